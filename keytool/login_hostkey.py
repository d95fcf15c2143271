"""The server's host key: ``HostCheck`` builds what the key exchange needs to verify it,
the algorithms known_hosts has for it first, and the check itself (RevokedHostKeys,
known_hosts and KnownHostsCommand, StrictHostKeyChecking, a pinned fingerprint); and
``too_short``, RequiredRSASize's test, for host and user keys alike.
"""

from __future__ import annotations

import os

from keytool.errors import HostKeyError, HostKeyPinError, KeytoolError
from keytool.options import ConnectOptions, Prompts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from keytool.hostcheck import HostKeyDecision, Prompter
    from keytool.keys.base import PublicKey
    from keytool.knownhosts import KnownHost
    from keytool.transport.config import TransportConfig


def _loopback(address: str | None) -> bool:
    """A loopback address (127.0.0.0/8, ::1, or IPv4's in IPv6); None (a ProxyCommand's
    connection) is not."""
    if address is None:
        return False
    import ipaddress

    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def too_short(key: PublicKey, required: int) -> bool:
    """An RSA key (or certificate) shorter than RequiredRSASize."""
    return key.plain.key_type == "ssh-rsa" and key.bits < required


class HostCheck:
    """The transport config to offer (host key algorithms known_hosts has for this
    host first) and the check of the key the server shows (``check(key, algorithm)``
    returns to accept, raises HostKeyError to refuse; it may prompt on the terminal).
    ``allow_password`` is False after accepting a changed key with checking off, as
    ssh then refuses password authentication. ``trusted`` is True when the key was
    found in the user's own known_hosts or confirmed by the user at the question: as
    ssh, only then may UpdateHostKeys change the files."""

    def __init__(self, options: ConnectOptions, prompts: Prompts) -> None:
        self.options = options
        self.prompts = prompts
        self.allow_password = True
        self.trusted = False
        #: the answers to host key questions given so far (``check_async``)
        self._answers: list[str | None] | None = None
        self._asked = 0
        #: the server's address, shown in the host key question as ssh shows it (the
        #: drivers set it once connected; a ProxyCommand has none)
        self.address: str | None = None
        config = options.transport
        if options.trace is not None and config.trace is None:
            config = config._replace(trace=options.trace)
        if options.expected_host_key is None:
            from keytool import hostcheck

            files = (options.user_known_hosts, options.global_known_hosts)
            known, authority = hostcheck.host_key_hints_for(*options.known_hosts_name(), *files)
            host = options.known_hosts_name()[0]
            extra = self._command_entries("ORDER", host, None)
            if extra:
                # as ssh 9.2: the command's lines are matched against the host name
                # alone here (%H has no port), whatever the port
                more, by_authority = hostcheck.host_key_hints_for(host, 22, (), (), extra)
                known = [*known, *more]
                authority = authority or by_authority
            if known or authority:
                ordered = hostcheck.order_host_key_algorithms(
                    config.host_key_algorithms, known, authority
                )
                config = config._replace(host_key_algorithms=ordered)
        self.config: TransportConfig = config

    def _command_entries(
        self, invocation: str, host_name: str, key: PublicKey | None
    ) -> list[KnownHost]:
        """KnownHostsCommand's known_hosts lines, when there is one (ssh runs it before
        the key exchange, ORDER, and to check the key, HOSTNAME)."""
        options = self.options
        if not options.known_hosts_command:
            return []
        from keytool import hostcheck

        say = self.prompts.show if options.shows_errors else self._trace
        self._trace(f"host key: asking KnownHostsCommand ({invocation})")
        return hostcheck.command_entries(
            options.known_hosts_command, invocation, host_name, key, options.fingerprint_hash, say
        )

    def _trace(self, line: str) -> None:
        if self.options.trace is not None:
            self.options.trace(line)

    async def check_async(self, key: PublicKey, algorithm: str) -> None:
        """``check``, with a question on the terminal asked without blocking the event
        loop (``prompting.LoopPrompts``): the check is run again with the answers
        given so far until it needs no new one (it writes nothing before the last)."""
        from keytool.prompting import LoopPrompts

        if not isinstance(self.prompts, LoopPrompts):
            self.check(key, algorithm)
            return
        self._answers = []
        try:
            while True:
                self._asked = 0
                try:
                    self.check(key, algorithm)
                    return
                except _NeedAnswer as need:
                    self._answers.append(await self.prompts.question(need.prompt))
        finally:
            self._answers = None

    def _question_prompter(self) -> Prompter | None:
        from keytool import hostcheck

        if self.options.batch_mode:
            return None
        found = hostcheck.question_prompter()
        if found is None or self._answers is None:
            return found
        answers = self._answers

        def replay(prompt: str) -> str | None:
            if self._asked < len(answers):
                self._asked += 1
                return answers[self._asked - 1]
            raise _NeedAnswer(prompt)

        return replay

    def check(self, key: PublicKey, algorithm: str) -> None:
        from keytool.keys.fingerprint import fingerprint

        options = self.options
        if too_short(key, options.required_rsa_size):  # ssh's words, before all else
            raise HostKeyError("Bad server host key: Invalid key length")
        if options.revoked_host_keys:
            from keytool import hostcert

            hostcert.check_revoked_host_key(
                *options.known_hosts_name(), key, options.revoked_host_keys
            )
            self._trace(f"host key not revoked by {', '.join(options.revoked_host_keys)}")
        if (
            options.expected_host_key is None
            and options.no_host_authentication_for_localhost
            and options.host_key_alias is None
            and _loopback(self.address)
        ):
            # as ssh: the key of a server on this machine (a home folder shared over
            # NFS sees another "localhost" from each machine) is taken unchecked, and
            # nothing is written for it
            self._trace("host key: taken unchecked, loopback (NoHostAuthenticationForLocalhost)")
            return
        if options.expected_host_key is not None:
            if fingerprint(key) != options.expected_host_key.strip():
                raise HostKeyPinError(
                    f"host key for {options.host} is {fingerprint(key)}, "
                    f"not the expected {options.expected_host_key.strip()}",
                    key.key_type,
                )
            self._trace("host key matches the expected fingerprint")
            self._record_pinned(key)
            return
        if key.plain is not key:
            self.allow_password = self._verify_certificate(key)
            return
        self.allow_password = self._verify(key)

    def _record_pinned(self, key: PublicKey) -> None:
        """A key the user pinned by its fingerprint is as good as a "yes" to ssh's
        question: recorded in known_hosts when the host is not there yet, so the next
        login knows it. Not under StrictHostKeyChecking=yes, which never records; a
        host known with another key keeps its line (the pin is for this run only)."""
        from keytool import hostcheck

        options = self.options
        if options.strict_host_key_checking == "yes" or key.plain is not key:
            return
        try:
            decision = hostcheck.verify_host_key(
                *options.known_hosts_name(),
                key,
                user_files=options.user_known_hosts,
                global_files=options.global_known_hosts,
                strict="accept-new",
                hash_known_hosts=options.hash_known_hosts,
                hash_name=options.fingerprint_hash,
                recordable=hostcheck.recordable_name(options.host),
            )
        except KeytoolError as exc:  # known with another key, revoked, not recordable
            from keytool.hostcheck import FAILED

            lines = [line for line in str(exc).splitlines() if line.strip() and line != FAILED]
            reason = lines[-1] if lines else "refused"
            self._trace(f"host key not recorded in known_hosts: {reason}")
            return
        self._report(decision)

    def _verify(self, key: PublicKey) -> bool:
        from keytool import hostcheck

        options = self.options
        prompt = self._question_prompter()
        extra = self._command_entries("HOSTNAME", _lookup_name(options), key)
        decision = hostcheck.verify_host_key(
            *options.known_hosts_name(),
            key,
            user_files=options.user_known_hosts,
            global_files=options.global_known_hosts,
            strict=options.strict_host_key_checking,
            hash_known_hosts=options.hash_known_hosts,
            prompt=prompt,
            address=self.address,
            visual=options.visual_host_key,
            hash_name=options.fingerprint_hash,
            extra=extra,
            recordable=hostcheck.recordable_name(options.host),
        )
        self.trusted = _trusted(decision, options)
        return self._report(decision)

    def _verify_certificate(self, key: PublicKey) -> bool:
        """A host certificate: a @cert-authority line, or else its key as a plain key."""
        from keytool import hostcert, hostcheck
        from keytool.keys.cert import Certificate, key_type_of_algorithm

        assert isinstance(key, Certificate)
        options = self.options
        self._trace(f"server host certificate: {hostcert.describe_certificate(key)}")
        self._trace(f"server host certificate principals: {', '.join(key.principals)}")
        host, port = options.known_hosts_name()
        extra = self._command_entries("HOSTNAME", _lookup_name(options), key)
        plain_type = key.key.key_type
        decision = hostcert.verify_host_certificate(
            host,
            port,
            key,
            principal=host,
            ca_algorithms=options.ca_signature_algorithms,
            plain_allowed=any(
                key_type_of_algorithm(a) == plain_type for a in self.config.host_key_algorithms
            ),
            user_files=options.user_known_hosts,
            global_files=options.global_known_hosts,
            strict=options.strict_host_key_checking,
            hash_known_hosts=options.hash_known_hosts,
            prompt=self._question_prompter(),
            extra=extra,
            recordable=hostcheck.recordable_name(options.host),
        )
        return self._report(decision)

    def _report(self, decision: HostKeyDecision) -> bool:
        from keytool.knownhosts import Known

        if self.options.shows_errors:
            for message in decision.messages:
                self.prompts.show(message)
        if self.options.shows_info:
            for message in decision.info:
                self.prompts.show(message)
        for note in decision.notes:
            self._trace(note)
        if isinstance(decision.status, Known):
            self._trace(f"host key found in known_hosts at {decision.status.entry.where}")
        elif decision.added_to is not None:
            self._trace(f"host key added to {decision.added_to}")
        return decision.allow_password_auth


class _NeedAnswer(Exception):
    """The host key check needs an answer not given yet (``HostCheck.check_async``)."""

    def __init__(self, prompt: str) -> None:
        super().__init__(prompt)
        self.prompt = prompt


def _trusted(decision: HostKeyDecision, options: ConnectOptions) -> bool:
    from keytool.knownhosts import Known

    if isinstance(decision.status, Known):
        user_files = {os.path.expanduser(f) for f in options.user_known_hosts}
        return decision.status.entry.source in user_files
    # a new key added: trusted only when the user said yes to the question
    return decision.added_to is not None and options.strict_host_key_checking == "ask"


def _lookup_name(options: ConnectOptions) -> str:
    """The server's name as known_hosts records it (``[host]:port`` off port 22)."""
    from keytool.knownhosts import lookup_name

    return lookup_name(*options.known_hosts_name())
