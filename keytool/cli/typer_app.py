"""The Typer app, built from the command table; imported only for --help and usage errors."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from keytool.cli.spec import COMMANDS, Command, find
from keytool.errors import UsageError

_TYPES: dict[str, Any] = {
    "str": str | None,
    "int": int | None,
    "flag": bool,
    "count": int,
    "multi": list[str] | None,
}


def _bare_help(option: Any) -> Any:
    """The help option is a flag too: no <bool> beside it."""
    if option is not None:
        option.metavar = ""
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _bare_help(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _bare_help(super().get_help_option(ctx))


def _callback(command: Command) -> Any:
    def invoke(**values: object) -> None:
        from keytool.cli.app import invoke as run_command

        for opt in command.options:
            if opt.kind == "multi" and values.get(opt.dest) is None:
                values[opt.dest] = []
        raise SystemExit(run_command(command, values))

    params: list[inspect.Parameter] = []
    for arg in command.arguments:
        annotation = list[str] | None if arg.many else (str if arg.required else str | None)
        params.append(
            inspect.Parameter(
                arg.dest,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=... if arg.required else None,
                annotation=Annotated[annotation, typer.Argument(help=arg.help)],
            )
        )
    if command.rest:
        params.append(
            inspect.Parameter(
                command.rest,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Annotated[
                    list[str] | None, typer.Argument(help="command and arguments")
                ],
            )
        )
    for opt in command.options:
        default: object = False if opt.kind == "flag" else 0 if opt.kind == "count" else None
        info = typer.Option(
            *opt.flags,
            help=opt.help,
            # a flag takes no value: no <bool> or <int> beside it
            metavar="" if opt.kind in ("flag", "count") else opt.metavar or None,
            count=opt.kind == "count",
            show_default=opt.kind != "count",  # -v counts: no "[default: 0]"
        )
        params.append(
            inspect.Parameter(
                opt.dest,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[_TYPES[opt.kind], info],
            )
        )
    invoke.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    invoke.__name__ = command.name.replace("-", "_")
    invoke.__doc__ = command.help
    return invoke


def build() -> typer.Typer:
    app = typer.Typer(
        name="keytool",
        cls=_Group,
        help="SSH keys, an agent and copy-id, speaking SSH itself.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for command in COMMANDS:
        settings: dict[str, object] = {"allow_interspersed_args": False} if command.rest else {}
        # -h and -? ask for help, as with OpenSSH's tools, where the command has no -h
        # of its own (Click leaves out a name an option of the command takes)
        settings["help_option_names"] = ["-h", "-?", "--help"]
        app.command(name=command.name, cls=_Command, help=command.help, context_settings=settings)(
            _callback(command)
        )
    return app


def run(argv: list[str]) -> int:
    """Help, or the usage error of a command line the fast parser would not take: one
    line on stderr (as every keytool error), not Click's boxed usage block."""
    app = build()
    try:
        result = app(args=argv, prog_name="keytool", standalone_mode=False)
    except typer.TyperException as exc:
        if not argv:  # bare ``keytool``: Click printed the help already; once is enough
            return 2
        message = exc.format_message().rstrip(".")
        if argv and find(argv[0]) is not None:
            raise UsageError(f"{argv[0]}: {message} (see keytool {argv[0]} --help)") from None
        raise UsageError(f"{message} (see keytool --help)") from None
    return result if isinstance(result, int) else 0
