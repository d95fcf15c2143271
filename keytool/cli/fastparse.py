"""A getopt-style parser over the command table: OpenSSH's flag habits (clustered
short flags, ``-b4096``, ``-N ''``, ``--`` ending options), without importing Typer.

It returns None whenever it is unsure (help asked, unknown flag, missing value), and
the caller hands the command line to Typer, which prints proper usage and errors.
"""

from __future__ import annotations

from keytool.cli.spec import Command, Opt, find
from keytool.errors import UsageError

Values = dict[str, object]


def _initial(command: Command) -> Values:
    values: Values = {}
    for opt in command.options:
        if opt.kind == "flag":
            values[opt.dest] = False
        elif opt.kind == "count":
            values[opt.dest] = 0
        elif opt.kind == "multi":
            values[opt.dest] = []
        else:
            values[opt.dest] = None
    for arg in command.arguments:
        values[arg.dest] = [] if arg.many else None
    if command.rest:
        values[command.rest] = []
    if command.order:
        values[command.order] = []
    return values


def _given(values: Values, opt: Opt, order: str | None) -> None:
    """Note ``opt`` in the command's list of options in the order given (flags too:
    ssh lets the last of -t and -T, -a and -A, -x and -X count)."""
    if order is not None:
        given = values[order]
        assert isinstance(given, list)
        given.append(opt.dest)


def _store(values: Values, opt: Opt, raw: str, order: str | None = None) -> bool:
    _given(values, opt, order)
    if opt.kind == "int":
        # ASCII digits, as strtonum reads them (int() takes "1_000" and other scripts' digits)
        digits = raw[1:] if raw[:1] in ("+", "-") else raw
        if not (raw.isascii() and digits.isdigit()):
            return False
        values[opt.dest] = int(raw, 10)
    elif opt.kind == "multi":
        current = values[opt.dest]
        assert isinstance(current, list)
        current.append(raw)
    else:
        values[opt.dest] = raw
    return True


def _not_a_number(command: Command, flag: str, raw: str) -> UsageError:
    """Only a number fails to store: one of ASCII digits, as strtonum reads it (Typer,
    like int(), would take "1_000" and digits of other scripts)."""
    return UsageError(
        f"{command.name}: Invalid value for '{flag}': {raw!r} is not a number "
        f"(see keytool {command.name} --help)"
    )


def parse(argv: list[str]) -> tuple[Command, Values] | None:
    if not argv:
        return None
    command = find(argv[0])
    if command is None:
        return None
    by_flag = {flag: opt for opt in command.options for flag in opt.flags}
    values = _initial(command)
    positional: list[str] = []
    words = argv[1:]
    i = 0
    positional_slots = sum(1 for a in command.arguments if not a.many)
    has_many = any(a.many for a in command.arguments)
    following = False

    def unsure(problem: str) -> None:
        """Typer decides (help, usage) but for an option after the destination."""
        if following:
            raise UsageError(f"{command.name}: {problem} (see keytool {command.name} --help)")

    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            positional.extend(words[i:])
            break
        if command.rest and not has_many and 0 < positional_slots <= len(positional):
            if not (command.options_follow and word.startswith("-") and len(word) > 1):
                # like ssh: once the destination is known, the rest is the remote command
                positional.extend(words[i - 1 :])
                break
            # ssh reads options after the destination too, up to the command; what it
            # refuses there is a usage error, never a word of the command
            following = True
        if word == "--help" or (word == "-h" and "-h" not in by_flag):
            unsure(f"No such option: {word}")
            return None
        if word.startswith("--"):
            name, eq, inline = word.partition("=")
            opt = by_flag.get(name)
            if opt is None:
                unsure(f"No such option: {name}")
                return None
            if opt.kind in ("flag", "count"):
                if eq:
                    unsure(f"Option '{name}' does not take a value.")
                    return None
                values[opt.dest] = True if opt.kind == "flag" else int(values[opt.dest]) + 1  # type: ignore[call-overload]
                _given(values, opt, command.order)
                continue
            if not eq:
                if i >= len(words):
                    unsure(f"Option '{name}' requires an argument.")
                    return None
                inline = words[i]
                i += 1
            if not _store(values, opt, inline, command.order):
                raise _not_a_number(command, name, inline)
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                opt = by_flag.get("-" + word[j])
                if opt is None:
                    unsure(f"No such option: -{word[j]}")
                    return None
                j += 1
                if opt.kind == "flag":
                    values[opt.dest] = True
                    _given(values, opt, command.order)
                    continue
                if opt.kind == "count":
                    values[opt.dest] = int(values[opt.dest]) + 1  # type: ignore[call-overload]
                    _given(values, opt, command.order)
                    continue
                if j < len(word):
                    raw = word[j:]
                else:
                    if i >= len(words):
                        unsure(f"Option '{opt.flags[0]}' requires an argument.")
                        return None
                    raw = words[i]
                    i += 1
                if not _store(values, opt, raw, command.order):
                    raise _not_a_number(command, opt.flags[0], raw)
                break
            continue
        if command.rest and not has_many and positional_slots == 0:
            # a command with no arguments: the first word starts the command to run
            positional.extend(words[i - 1 :])
            break
        if not positional and command.order and command.options_follow:
            # where the destination came among the options: ssh takes its user and
            # port there, the first value of each winning
            given = values[command.order]
            assert isinstance(given, list)
            given.append("destination")
        positional.append(word)
    # hand out positional words: fixed arguments first, then a variadic one or ``rest``
    for arg in command.arguments:
        if arg.many:
            values[arg.dest] = positional
            positional = []
        elif positional:
            values[arg.dest] = positional.pop(0)
        elif arg.required:
            return None
    if positional:
        if not command.rest:
            return None
        values[command.rest] = positional
    return command, values
