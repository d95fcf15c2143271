"""Every subcommand and flag, declared once.

The table drives two parsers: a small getopt-style one (fastparse.py) that runs the
command without importing Typer, and the Typer app (typer_app.py) used for --help and
for reporting usage errors. Flags mirror OpenSSH's tools so habits carry over.
Nothing heavy is imported here, not even typing: ``keytool exec`` parses its command
line before it connects, and every millisecond before the connect is one the server
cannot use.
"""

from __future__ import annotations

from keytool.record import Record, init

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["str", "int", "flag", "count", "multi"]


class Opt(Record):
    __slots__ = ("dest", "flags", "help", "kind", "metavar")
    dest: str
    flags: tuple[str, ...]
    help: str
    kind: Kind
    metavar: str

    def __init__(
        self, dest: str, flags: tuple[str, ...], help: str, kind: Kind = "str", metavar: str = ""
    ) -> None:
        init(self, dest=dest, flags=flags, help=help, kind=kind, metavar=metavar)


class Arg(Record):
    __slots__ = ("dest", "help", "many", "required")
    dest: str
    help: str
    many: bool  # zero or more
    required: bool

    def __init__(self, dest: str, help: str, many: bool = False, required: bool = False) -> None:
        init(self, dest=dest, help=help, many=many, required=required)


class Command(Record):
    __slots__ = (
        "arguments",
        "help",
        "name",
        "options",
        "options_follow",
        "order",
        "rest",
        "target",
    )
    name: str
    help: str
    target: str  # "module:function" called with every dest as a keyword
    options: tuple[Opt, ...]
    arguments: tuple[Arg, ...]
    #: dest that takes every word after the positional arguments (or after "--")
    rest: str | None
    #: keyword that gets the dests of the options in the order they were given (ssh
    #: keeps the first of -p and -o Port=, whichever comes first); None: not kept
    order: str | None
    #: options may follow the positional arguments, up to the first word that is none
    #: (ssh reads ``ssh HOST -p 2222 ls -l`` so); else the rest starts right there
    options_follow: bool

    def __init__(
        self,
        name: str,
        help: str,
        target: str,
        options: tuple[Opt, ...] = (),
        arguments: tuple[Arg, ...] = (),
        rest: str | None = None,
        order: str | None = None,
        options_follow: bool = False,
    ) -> None:
        init(
            self,
            options_follow=options_follow,
            name=name,
            help=help,
            target=target,
            options=options,
            arguments=arguments,
            rest=rest,
            order=order,
        )


FILE_OPT = Opt("file", ("-f",), "key file", metavar="FILE")
HASH_OPT = Opt(
    "hash_name",
    ("-E",),
    "fingerprint hash: sha256 (default), md5, sha1, sha384 or sha512",
    metavar="HASH",
)
QUIET_OPT = Opt("quiet", ("-q",), "quiet", "flag")
KEY_FORMAT_OPT = Opt(
    "key_format",
    ("-m",),
    "private key format: RFC4716 (OpenSSH's own, default), PEM or PKCS8 (RSA and ECDSA)",
    metavar="FMT",
)
CIPHER_OPT = Opt(
    "cipher",
    ("-Z",),
    "cipher of an OpenSSH-format key (default aes256-ctr; as ssh-keygen -Z)",
    metavar="CIPHER",
)

COMMANDS: tuple[Command, ...] = (
    Command(
        "gen",
        "Generate a key pair (ssh-keygen -t … -b … -f …).",
        "keytool.cli.gen:run",
        (
            Opt("key_type", ("-t",), "key type: ed25519 (default), rsa or ecdsa", metavar="TYPE"),
            Opt("bits", ("-b",), "bits: RSA default 3072; ECDSA 256, 384 or 521", "int"),
            Opt("comment", ("-C",), "comment (default user@host)", metavar="COMMENT"),
            Opt(
                "file",
                ("-f",),
                "output file (default ~/.ssh/id_<type>); with -A the prefix of /etc/ssh",
                metavar="FILE",
            ),
            Opt("passphrase", ("-N",), "new passphrase ('' for none)", metavar="PASSPHRASE"),
            Opt("rounds", ("-a",), "bcrypt KDF rounds (default 24)", "int"),
            KEY_FORMAT_OPT,
            CIPHER_OPT,
            Opt(
                "host_keys",
                ("-A",),
                "make each missing host key (RSA, ECDSA, Ed25519) in /etc/ssh, "
                "or under -f PREFIX (ssh-keygen -A)",
                "flag",
            ),
            QUIET_OPT,
            Opt("force", ("--force",), "overwrite an existing key without asking", "flag"),
        ),
    ),
    Command(
        "fingerprint",
        "Show fingerprints of the keys in a file (ssh-keygen -l, -B), or SSHFP records (-r).",
        "keytool.cli.fingerprint:run",
        (
            Opt("file", ("-f",), "key, authorized_keys or known_hosts file", metavar="FILE"),
            HASH_OPT,
            Opt("visual", ("-v",), "also draw the randomart picture", "flag"),
            Opt("bubblebabble", ("-B",), "the bubblebabble of the SHA-1 digest", "flag"),
            Opt(
                "rr_host",
                ("-r",),
                "print SSHFP records for HOSTNAME (of -f FILE, else /etc/ssh's host keys)",
                metavar="HOSTNAME",
            ),
            Opt("generic", ("-g",), "with -r: the generic (RFC 3597) record form", "flag"),
        ),
    ),
    Command(
        "pub",
        "Print the public key of a private key file (ssh-keygen -y).",
        "keytool.cli.pub:run",
        (
            FILE_OPT,
            Opt("passphrase", ("-P",), "passphrase of the private key", metavar="PASSPHRASE"),
        ),
    ),
    Command(
        "passwd",
        "Change the passphrase of a private key file (ssh-keygen -p).",
        "keytool.cli.passwd:run",
        (
            FILE_OPT,
            Opt("old", ("-P",), "old passphrase", metavar="OLD"),
            Opt("new", ("-N",), "new passphrase ('' for none)", metavar="NEW"),
            Opt("rounds", ("-a",), "bcrypt KDF rounds (default 24)", "int"),
            KEY_FORMAT_OPT,
            CIPHER_OPT,
        ),
    ),
    Command(
        "comment",
        "Change the comment of a key file (ssh-keygen -c).",
        "keytool.cli.comment:run",
        (
            FILE_OPT,
            Opt("comment", ("-C",), "new comment", metavar="COMMENT"),
            Opt("passphrase", ("-P",), "passphrase of the private key", metavar="PASSPHRASE"),
            Opt(
                "rounds", ("-a",), "bcrypt KDF rounds of an encrypted key (as ssh-keygen -c)", "int"
            ),
            CIPHER_OPT,
        ),
    ),
    Command(
        "check",
        "Check ~/.ssh against SSH's best practices: modes, passphrases, weak keys. "
        "Exit status: 0 nothing sshd or ssh would refuse (warnings aside; no ~/.ssh is "
        "nothing to check), 1 a FAIL, 255 check could not run.",
        "keytool.cli.check:run",
        (
            Opt("directory", ("-d",), "the folder (default ~/.ssh)", metavar="DIR"),
            Opt("fix", ("--fix",), "set the modes sshd and ssh want (nothing else)", "flag"),
        ),
    ),
    Command(
        "export",
        "Write a public key as RFC4716, PKCS8 or PEM (ssh-keygen -e).",
        "keytool.cli.convert:run_export",
        (
            FILE_OPT,
            Opt("key_format", ("-m",), "RFC4716 (default), PKCS8 or PEM", metavar="FMT"),
            Opt(
                "passphrase",
                ("-P",),
                "passphrase of a private key that has no public part to read",
                metavar="PASSPHRASE",
            ),
        ),
    ),
    Command(
        "import",
        "Read an RFC4716, PKCS8 or PEM public key as an OpenSSH line (ssh-keygen -i).",
        "keytool.cli.convert:run_import",
        (
            FILE_OPT,
            Opt("key_format", ("-m",), "RFC4716, PKCS8 or PEM (default: any)", metavar="FMT"),
        ),
    ),
    Command(
        "known-hosts",
        "Find, remove or hash hosts in known_hosts (ssh-keygen -F, -R, -H).",
        "keytool.cli.knownhosts:run",
        (
            Opt("find", ("-F",), "show the lines of HOST (or \\[HOST]:PORT)", metavar="HOST"),
            Opt("remove", ("-R",), "remove the keys of HOST (keeps FILE.old)", metavar="HOST"),
            Opt(
                "hash_all",
                ("-H",),
                "hash every host name (keeps FILE.old); with -F: show the lines found hashed",
                "flag",
            ),
            Opt("file", ("-f",), "the file (default ~/.ssh/known_hosts)", metavar="FILE"),
            Opt("fingerprints", ("-l",), "with -F: the fingerprints of the keys found", "flag"),
            HASH_OPT,
            Opt("quiet", ("-q",), 'with -F: no "# Host ... found" lines', "flag"),
        ),
    ),
    Command(
        "keyscan",
        "Print servers' host keys as known_hosts lines (ssh-keyscan).",
        "keytool.cli.keyscan:run",
        (
            Opt("port", ("-p",), "port (default 22)", "int"),
            Opt("types", ("-t",), "key types: rsa,ecdsa,ed25519 (default all)", metavar="TYPES"),
            Opt("hashed", ("-H",), "hash the host names", "flag"),
            Opt("timeout", ("-T",), "seconds for each connection (default 5)", "int"),
            Opt("hosts_file", ("-f",), "more hosts, one per line", metavar="FILE"),
            Opt("certs", ("-c",), "print host certificates instead of plain keys", "flag"),
            Opt("sshfp", ("-D",), "print SSHFP resource records instead", "flag"),
            Opt("ipv4", ("-4",), "IPv4 addresses only", "flag"),
            Opt("ipv6", ("-6",), "IPv6 addresses only", "flag"),
            QUIET_OPT,
        ),
        (Arg("hosts", "hosts to scan", many=True),),
    ),
    Command(
        "sign",
        "Sign files for a namespace such as git or file (ssh-keygen -Y sign).",
        "keytool.cli.sign:run_sign",
        (
            Opt(
                "key_file",
                ("-f",),
                "private key, or its .pub / -cert.pub (signed by the agent or the key beside it)",
                metavar="KEY",
            ),
            Opt("namespace", ("-n",), "what the signature is for: git, file, ...", metavar="NS"),
            Opt(
                "sign_options",
                ("-O",),
                "hashalg=sha512 (default) or hashalg=sha256",
                "multi",
                metavar="OPTION",
            ),
            Opt("agent_key", ("-U",), "KEY is a public key held by the agent", "flag"),
            Opt("force", ("--force",), "overwrite an existing FILE.sig", "flag"),
        ),
        (
            Arg(
                "files", "files to sign (each to FILE.sig); none or '-': stdin to stdout", many=True
            ),
        ),
    ),
    Command(
        "cert",
        "Certify public keys with a CA key (ssh-keygen -s), or show certificates (-L).",
        "keytool.cli.cert:run",
        (
            Opt("ca_key", ("-s",), "CA private key (with -U: its public key)", metavar="CA_KEY"),
            Opt("key_id", ("-I",), "key identity, logged by sshd when it is used", metavar="ID"),
            Opt("host", ("-h",), "a host certificate (default: a user certificate)", "flag"),
            Opt("principals", ("-n",), "user or host names, comma-separated", metavar="NAMES"),
            Opt(
                "validity",
                ("-V",),
                "validity: +52w, or FROM:TO (-1d:+4w, 20250101:20260101Z, always:forever)",
                metavar="INTERVAL",
            ),
            Opt("serial", ("-z",), "serial number (+N: one more for each key)", metavar="SERIAL"),
            Opt(
                "options",
                ("-O",),
                "clear, no-pty, force-command=CMD, source-address=CIDR,... "
                "extension:NAME[=VALUE], critical:NAME[=VALUE]; repeatable",
                "multi",
                metavar="OPTION",
            ),
            Opt(
                "algorithm",
                ("-t",),
                "RSA CA signature: rsa-sha2-512 (default), rsa-sha2-256 or ssh-rsa",
                metavar="ALG",
            ),
            Opt("agent_key", ("-U",), "the CA key is in the agent (SSH_AUTH_SOCK)", "flag"),
            Opt("passphrase", ("-P",), "passphrase of the CA key", metavar="PASSPHRASE"),
            QUIET_OPT,
            Opt("show", ("-L",), "show the certificates of -f FILE (ssh-keygen -L)", "flag"),
            Opt("file", ("-f",), "certificate file for -L ('-' reads stdin)", metavar="FILE"),
            HASH_OPT,
        ),
        (Arg("files", "public key files to certify (each to FILE-cert.pub)", many=True),),
    ),
    Command(
        "krl",
        "Make or update a key revocation list (ssh-keygen -k), or query one (-Q).",
        "keytool.cli.krl:run",
        (
            Opt("file", ("-f",), "the KRL file", metavar="KRL_FILE"),
            Opt("generate", ("-k",), "make the KRL from FILEs (the default)", "flag"),
            Opt("query", ("-Q",), "say whether the keys of FILEs are revoked", "flag"),
            Opt("print_contents", ("-l",), "with -Q: print the KRL's contents first", "flag"),
            Opt("update", ("-u",), "add to the existing KRL instead of replacing it", "flag"),
            Opt(
                "ca_key",
                ("-s",),
                "CA public key of serial: and id: lines ('none': any CA)",
                metavar="CA_PUBLIC",
            ),
            Opt("version", ("-z",), "KRL version number", metavar="VERSION"),
            Opt("comment", ("-C",), "KRL comment", metavar="COMMENT"),
            QUIET_OPT,
        ),
        (
            Arg(
                "files",
                "public key files or revocation specs ('-' reads stdin); with -Q: key files",
                many=True,
            ),
        ),
    ),
    Command(
        "verify",
        "Check an SSH signature of stdin (ssh-keygen -Y verify / check-novalidate).",
        "keytool.cli.sign:run_verify",
        (
            Opt("signature_file", ("-s",), "the signature file", metavar="SIG"),
            Opt("namespace", ("-n",), "the namespace it must be for", metavar="NS"),
            Opt("allowed_file", ("-f",), "allowed_signers file", metavar="FILE"),
            Opt("identity", ("-I",), "who must have signed (a principal)", metavar="ID"),
            Opt(
                "verify_options",
                ("-O",),
                "verify-time=YYYYMMDD[HHMM[SS]][Z]: check the signers' validity then; "
                "print-pubkey: print the signer's public key",
                "multi",
                metavar="OPTION",
            ),
            Opt(
                "revoked_file",
                ("-r",),
                "KRL or public keys file: a signer it revokes does not verify",
                metavar="REVOKED",
            ),
            Opt(
                "find_principals",
                ("--find-principals",),
                "print the principals that may have signed (ssh-keygen -Y find-principals)",
                "flag",
            ),
            Opt(
                "match_principals",
                ("--match-principals",),
                "print the lines' principals that match -I (ssh-keygen -Y match-principals)",
                "flag",
            ),
        ),
    ),
    Command(
        "agent",
        'Run an ssh-agent-compatible agent (eval "$(keytool agent)").',
        "keytool.cli.agent:run",
        (
            Opt("bind", ("-a",), "listen on this socket path", metavar="BIND"),
            Opt("csh", ("-c",), "print csh commands", "flag"),
            Opt("sh", ("-s",), "print sh commands", "flag"),
            Opt("fish", ("--fish",), "print fish commands", "flag"),
            Opt("foreground", ("-D",), "stay in the foreground", "flag"),
            Opt("debug", ("-d",), "debug: foreground, log to stderr", "flag"),
            Opt("lifetime", ("-t",), "default key lifetime (e.g. 3600, 1h30m)", metavar="LIFE"),
            Opt(
                "fingerprint_hash",
                ("-E",),
                "fingerprint hash in confirmations: sha256 (default), md5, sha1, sha384 or sha512",
                metavar="HASH",
            ),
            Opt("kill", ("-k",), "stop the agent named by SSH_AGENT_PID", "flag"),
            Opt(
                "agent_option",
                ("-O",),
                "ssh-agent's allow-remote-pkcs11 or no-restrict-websafe (taken: this agent "
                "loads no providers and holds no FIDO keys)",
                "multi",
                "OPTION",
            ),
            Opt(
                "providers",
                ("-P",),
                "ssh-agent's allowed PKCS#11 providers (taken: none is ever loaded)",
                metavar="PATTERN",
            ),
        ),
        rest="command",
    ),
    Command(
        "add",
        "Add keys to the agent, list or remove them (ssh-add).",
        "keytool.cli.add:run",
        (
            Opt("list_keys", ("-l",), "list fingerprints of the agent's keys", "flag"),
            Opt("list_public", ("-L",), "list the agent's public keys", "flag"),
            HASH_OPT,
            Opt("delete", ("-d",), "remove the keys of these files", "flag"),
            Opt("delete_all", ("-D",), "remove every key", "flag"),
            Opt(
                "key_only",
                ("-k",),
                "add or remove plain keys only, not their KEY-cert.pub certificates",
                "flag",
            ),
            Opt("lock", ("-x",), "lock the agent with a password", "flag"),
            Opt("unlock", ("-X",), "unlock the agent", "flag"),
            Opt("lifetime", ("-t",), "key lifetime (e.g. 3600, 1h30m)", metavar="LIFE"),
            Opt("confirm", ("-c",), "confirm each use of the keys", "flag"),
            Opt(
                "destinations",
                ("-h",),
                "only use the keys for this destination: [user@]host or "
                "from-host>[user@]to-host; repeatable",
                "multi",
                metavar="DEST",
            ),
            Opt(
                "hostkey_files",
                ("-H",),
                "known_hosts file with the -h hosts' keys; repeatable "
                "(default: ~/.ssh/known_hosts{,2}, /etc/ssh/ssh_known_hosts{,2})",
                "multi",
                metavar="FILE",
            ),
            Opt("test", ("-T",), "test that the agent signs with these public keys", "flag"),
            QUIET_OPT,
            Opt(
                "verbose", ("-v",), "taken as ssh-add's (keytool add has no debug output)", "count"
            ),
            Opt(
                "pkcs11_add",
                ("-s",),
                "ask the agent to add the keys of this PKCS#11 provider",
                metavar="PROVIDER",
            ),
            Opt(
                "pkcs11_remove",
                ("-e",),
                "ask the agent to remove the keys of this PKCS#11 provider",
                metavar="PROVIDER",
            ),
            Opt(
                "sk_provider",
                ("-S",),
                "taken as ssh-add's security key provider (keytool loads no FIDO keys)",
                metavar="PROVIDER",
            ),
            Opt(
                "resident",
                ("-K",),
                "FIDO resident keys: fails, keytool has no FIDO support",
                "flag",
            ),
        ),
        (Arg("files", "key files ('-' reads stdin); none: ~/.ssh/id_*", many=True),),
    ),
    Command(
        "exec",
        "Run a command (or a shell) on a server and relay its output and exit status (ssh).",
        "keytool.cli.exec:run",
        (
            Opt("port", ("-p",), "port to connect to (the first -p, as ssh)", "multi", "PORT"),
            Opt(
                "identity",
                ("-i",),
                "identity (private key) file; repeatable",
                "multi",
                metavar="KEY",
            ),
            Opt(
                "option",
                ("-o",),
                "ssh_config option, e.g. -o StrictHostKeyChecking=yes",
                "multi",
                metavar="K=V",
            ),
            Opt("config_file", ("-F",), "config file instead of ~/.ssh/config", metavar="FILE"),
            Opt("login", ("-l",), "user to log in as (the first -l, as ssh)", "multi", "USER"),
            Opt("verbose", ("-v",), "tell each step of the connection", "count"),
            Opt("no_stdin", ("-n",), "stdin from /dev/null", "flag"),
            Opt(
                "forward",
                ("-W",),
                "no command: stdin and stdout to HOST:PORT through the server (ssh -W)",
                "multi",
                metavar="HOST:PORT",
            ),
            Opt(
                "local_forward",
                ("-L",),
                "forward a local port (or socket) to HOST:HOSTPORT (or a socket) through "
                "the server; repeatable",
                "multi",
                metavar="[BIND:]PORT:HOST:HOSTPORT",
            ),
            Opt(
                "remote_forward",
                ("-R",),
                "forward a port (or socket) of the server to HOST:HOSTPORT (or a socket) "
                "from here; repeatable",
                "multi",
                metavar="[BIND:]PORT:HOST:HOSTPORT",
            ),
            Opt(
                "dynamic_forward",
                ("-D",),
                "a SOCKS 4/5 proxy on a local port (or socket), through the server; repeatable",
                "multi",
                metavar="[BIND:]PORT|PATH",
            ),
            Opt("no_command", ("-N",), "run no command: only forward ports (ssh -N)", "flag"),
            Opt("background", ("-f",), "go to the background once logged in (ssh -f)", "flag"),
            Opt(
                "jump",
                ("-J",),
                "through these jump hosts first, comma-separated (ProxyJump)",
                "multi",
                metavar="[USER@]HOST[:PORT]",
            ),
            Opt("cipher", ("-c",), "ciphers to offer, comma-separated (Ciphers)", "multi", "SPEC"),
            Opt("mac", ("-m",), "MACs to offer, comma-separated (MACs)", "multi", "SPEC"),
            Opt("gateway", ("-g",), "other hosts may use local forwards (GatewayPorts)", "flag"),
            Opt("quiet", ("-q",), "quiet: no warnings or notices (LogLevel QUIET)", "flag"),
            Opt("syslog", ("-y",), "keytool's own messages and -v's steps to syslog", "flag"),
            Opt(
                "no_gssapi_delegation",
                ("-k",),
                "taken as ssh takes it: keytool has no GSSAPI, so it delegates nothing",
                "flag",
            ),
            Opt(
                "gssapi",
                ("-K",),
                "taken as an ssh built without GSSAPI takes it: no such method here",
                "flag",
            ),
            Opt(
                "tty",
                ("-t",),
                "ask for a terminal for the command (twice: even when stdin is not one)",
                "count",
            ),
            Opt("no_tty", ("-T",), "no terminal, not even for a shell", "flag"),
            Opt("escape", ("-e",), "escape character: ~ (default), ^X or none", "multi", "CHAR"),
            Opt(
                "agent_forwarding",
                ("-A",),
                "the session's programs may use our agent (ForwardAgent)",
                "flag",
            ),
            Opt("no_agent_forwarding", ("-a",), "no agent forwarding (the default)", "flag"),
            Opt(
                "x11",
                ("-X",),
                "X clients of the session may use our display, untrusted (ForwardX11)",
                "flag",
            ),
            Opt(
                "x11_trusted",
                ("-Y",),
                "X clients of the session may use our display, trusted (ForwardX11Trusted)",
                "flag",
            ),
            Opt("no_x11", ("-x",), "no X11 forwarding (the default)", "flag"),
            Opt("version", ("-V",), "print keytool's and OpenSSL's versions, as ssh -V", "flag"),
            Opt(
                "print_config",
                ("-G",),
                "print the configuration for the destination, as ssh -G, and exit",
                "flag",
            ),
            Opt("compress", ("-C",), "compress the connection (Compression)", "flag"),
            Opt("ipv4", ("-4",), "IPv4 addresses only (AddressFamily inet)", "flag"),
            Opt("ipv6", ("-6",), "IPv6 addresses only (AddressFamily inet6)", "flag"),
            Opt(
                "log_file",
                ("-E",),
                "keytool's own messages and -v's steps to this file (appended), not stderr",
                metavar="FILE",
            ),
            Opt(
                "bind_address",
                ("-b",),
                "connect from this local address (BindAddress)",
                metavar="ADDRESS",
            ),
            Opt(
                "bind_interface",
                ("-B",),
                "connect from this interface's address (BindInterface)",
                metavar="IFACE",
            ),
            Opt(
                "master",
                ("-M",),
                "be the master of a shared connection (ControlMaster yes; twice: ask)",
                "count",
            ),
            Opt(
                "control_path",
                ("-S",),
                "the control socket of a shared connection (ControlPath; none: no sharing)",
                metavar="PATH",
            ),
            Opt(
                "control_command",
                ("-O",),
                "ask the master of a shared connection: check, forward, cancel, exit, "
                "stop or proxy",
                "multi",
                metavar="CTL",
            ),
            Opt(
                "subsystem",
                ("-s",),
                "the command names a subsystem of the server, such as sftp (SessionType)",
                "flag",
            ),
            Opt(
                "query",
                ("-Q",),
                "list the algorithms keytool implements: cipher, kex, mac, key, sig... (help)",
                metavar="WHAT",
            ),
        ),
        (Arg("destination", "HOST, USER@HOST or ssh://USER@HOST:PORT"),),
        rest="command",
        order="given_order",
        options_follow=True,
    ),
    Command(
        "copy-id",
        "Install a public key in authorized_keys on servers, then log in with it (ssh-copy-id).",
        "keytool.cli.copyid:run",
        (
            Opt("identity", ("-i",), "public key (or its private key) to install", "multi", "KEY"),
            Opt(
                "port",
                ("-p",),
                "port to connect to (a number or a service name; the first -p counts)",
                "multi",
                "PORT",
            ),
            Opt("option", ("-o",), "ssh_config option, e.g. -o User=admin", "multi", "K=V"),
            Opt("config_file", ("-F",), "config file instead of ~/.ssh/config", metavar="FILE"),
            Opt("dry_run", ("-n",), "dry run: say what would be installed, change nothing", "flag"),
            Opt("force", ("-f",), "install without checking whether the key is there", "flag"),
            Opt("sftp", ("-s",), "edit the file over SFTP (accounts without a shell)", "flag"),
            Opt(
                "target",
                ("-t",),
                "the file to edit (default ~/.ssh/authorized_keys)",
                metavar="PATH",
            ),
            Opt("verbose", ("-v",), "tell each step", "count"),
            Opt("remove", ("--remove",), "take the key out instead", "flag"),
            Opt(
                "hosts_file",
                ("--hosts",),
                "more hosts, one per line ('-' reads stdin)",
                metavar="FILE",
            ),
            Opt("jobs", ("-j",), "hosts worked on at once (default 32)", "int"),
            Opt(
                "password_file",
                ("--password-file",),
                "password from this file's first line",
                metavar="FILE",
            ),
            Opt(
                "expect_hostkey",
                ("--expect-hostkey",),
                "refuse a host key but this one",
                metavar="SHA256:...",
            ),
            Opt(
                "no_verify", ("--no-verify",), "skip logging in with the new key afterwards", "flag"
            ),
        ),
        (Arg("destinations", "[user@]host or ssh://[user@]host[:port], one or more", many=True),),
        order="given_order",
    ),
)


def find(name: str) -> Command | None:
    for command in COMMANDS:
        if command.name == name:
            return command
    return None
