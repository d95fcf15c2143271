"""Keys for the key interop tests, made once per test session: ours (keytool.keys.generate)
and ssh-keygen's own. RSA 4096 takes seconds to generate, so each kind is made only once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from keytool.files import PRIVATE_MODE, write_atomic
from keytool.keys import PrivateKey, generate
from keytool.keys.base import PublicKey
from keytool.keys.pubfile import parse_public_line
from tests.peers import require, run

# every key type and size both sides must agree on (issue 2, item 5)
KINDS: list[tuple[str, int]] = [
    ("ed25519", 256),
    ("rsa", 2048),
    ("rsa", 3072),
    ("rsa", 4096),
    ("ecdsa", 256),
    ("ecdsa", 384),
    ("ecdsa", 521),
]
SPECS = [
    pytest.param(kind, bits, id=kind if kind == "ed25519" else f"{kind}-{bits}")
    for kind, bits in KINDS
]


@dataclass(frozen=True, slots=True)
class KeygenKey:
    """A key ssh-keygen generated: its unencrypted OpenSSH private file and its .pub."""

    private: bytes
    public_line: str  # the .pub line, without newline
    public: PublicKey
    comment: str

    def write(self, path: Path) -> Path:
        write_atomic(path, self.private, PRIVATE_MODE)
        return path


_OURS: dict[tuple[str, int], PrivateKey] = {}
_THEIRS: dict[tuple[str, int], KeygenKey] = {}


def ssh_keygen() -> str:
    return require("ssh-keygen")


def our_key(kind: str, bits: int) -> PrivateKey:
    if (kind, bits) not in _OURS:
        _OURS[kind, bits] = generate(kind, bits)
    return _OURS[kind, bits]


def keygen_key(kind: str, bits: int, folder: Path) -> KeygenKey:
    """ssh-keygen's key of this kind; made (in ``folder``) on first use only."""
    if (kind, bits) not in _THEIRS:
        path = folder / f"keygen-{kind}-{bits}"
        comment = f"ssh-keygen {kind} {bits} key"
        result = run(
            [ssh_keygen(), "-q", "-t", kind, "-b", str(bits), "-N", "", "-C", comment, "-f", path]
        )
        assert result.returncode == 0, result.stderr
        line = Path(f"{path}.pub").read_text().rstrip("\n")
        public, parsed_comment = parse_public_line(line)
        assert parsed_comment == comment
        _THEIRS[kind, bits] = KeygenKey(path.read_bytes(), line, public, comment)
    return _THEIRS[kind, bits]
