"""The agent's state: identities with their constraints and lifetimes, and the lock.

Pure: no sockets, no threads; time comes from an injected clock so tests can move it.
Nothing here ever puts key material or the lock passphrase into a string.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from keytool.agentdest import DestConstraint
from keytool.agentproto import Identity as WireIdentity
from keytool.agentproto import encode_identities
from keytool.keys.base import PrivateKey

# The lock passphrase is kept only as PBKDF2-SHA256 over a fresh random salt. The growing
# delay after a wrong passphrase, not the hash's cost, is what slows guessing; the rounds
# are modest because unlocking runs on the event loop.
LOCK_ROUNDS = 20_000
LOCK_SALT_SIZE = 16
# after the n-th wrong passphrase in a row, the next check waits STEP_DELAY * n, at most
# MAX_DELAY (as ssh-agent: 0.1 s more per failure, up to 10 s)
STEP_DELAY = 0.1
MAX_DELAY = 10.0

Clock = Callable[[], float]
Confirm = Callable[[str], bool]

#: the clock lifetimes are counted on: CLOCK_BOOTTIME where there is one, which goes on
#: while the machine sleeps (as ssh-agent's monotime()), so a key with a one-hour
#: lifetime is gone after a night's suspend; else the monotonic clock
_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def boot_clock() -> float:
    """Seconds on CLOCK_BOOTTIME (time.monotonic where the platform has none)."""
    if _BOOTTIME is not None:
        try:
            return time.clock_gettime(_BOOTTIME)
        except OSError:
            pass
    return time.monotonic()


def _hash_passphrase(passphrase: bytes, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase, salt, LOCK_ROUNDS)


@dataclass(slots=True, eq=False)
class Identity:
    """One key the agent holds; ``blob`` and ``algorithm`` are ready for the signing path."""

    key: PrivateKey
    blob: bytes
    comment: str
    expires: float | None  # clock time, None = forever
    confirm: bool
    is_rsa: bool
    #: restrict-destination-v00@openssh.com constraints (empty: usable anywhere)
    destinations: tuple[DestConstraint, ...] = ()

    def __repr__(self) -> str:
        return f"<Identity {self.key.public.key_type} {self.comment!r}>"


@dataclass(frozen=True, slots=True)
class UnlockResult:
    ok: bool
    delay: float  # seconds the caller should hold back this client's answer
    #: not checked yet: ask again after ``delay`` (a wait earned by a wrong passphrase)
    deferred: bool = False


@dataclass(slots=True, eq=False)
class Keyring:
    """Identities in the order they were added, keyed by public blob.

    A certificate (``cert.CertifiedPrivate``) is an identity of its own, keyed by the
    certificate blob: the plain key and its certificate are added, listed and removed
    separately, as in ssh-agent."""

    clock: Clock
    default_lifetime: int | None = None
    confirm: Confirm | None = None  # asks the user; None: confirm-constrained keys never sign
    fingerprint_hash: str = "sha256"  # -E: how the confirmation shows a key
    _identities: dict[bytes, Identity] = field(default_factory=dict)
    _answer: bytes | None = field(default=None, repr=False)  # cached IDENTITIES_ANSWER
    _next_expiry: float | None = None
    #: some identity has destination constraints (listing must then look at each)
    any_destinations: bool = False
    _lock_salt: bytes | None = field(default=None, repr=False)
    _lock_hash: bytes | None = field(default=None, repr=False)
    _failed_unlocks: int = 0
    _unlock_not_before: float = 0.0

    # -- identities

    def add(
        self,
        key: PrivateKey,
        comment: str,
        lifetime: int | None = None,
        confirm: bool = False,
        destinations: tuple[DestConstraint, ...] = (),
    ) -> Identity:
        """Add ``key``, or replace the comment and constraints of the same key.
        ``lifetime`` None takes the default (-t); 0 is a lifetime that ends at once,
        as in ssh-agent."""
        if lifetime is None:
            lifetime = self.default_lifetime
        expires = self.clock() + lifetime if lifetime is not None else None
        public = key.public
        blob = public.to_wire()  # a certificate is known by its own blob, not its key's
        # an RSA key or certificate signs with the algorithm the request's flags ask for
        is_rsa = public.plain.key_type == "ssh-rsa"
        identity = Identity(key, blob, comment, expires, confirm, is_rsa, destinations)
        self._identities[blob] = identity
        self._changed()
        return identity

    def remove(self, blob: bytes) -> bool:
        if self._identities.pop(blob, None) is None:
            return False
        self._changed()
        return True

    def remove_all(self) -> int:
        count = len(self._identities)
        self._identities.clear()
        self._changed()
        return count

    def find(self, blob: bytes) -> Identity | None:
        """The identity for ``blob`` if present and not expired. Never mutates the keyring,
        so a signing thread may call it while the event loop owns every change."""
        identity = self._identities.get(blob)
        if identity is None:
            return None
        if identity.expires is not None and self.clock() >= identity.expires:
            return None
        return identity

    def __len__(self) -> int:
        return len(self._identities)

    def identities(self) -> list[Identity]:
        self.expire()
        return list(self._identities.values())

    def identities_answer(self) -> bytes:
        """The IDENTITIES_ANSWER payload, built once per change of the keyring."""
        self.expire()
        if self._answer is None:
            self._answer = encode_identities(
                [WireIdentity(i.blob, i.comment) for i in self._identities.values()]
            )
        return self._answer

    def expire(self) -> float | None:
        """Drop keys whose lifetime ended; returns when the next one ends (None: never)."""
        if self._next_expiry is None or self.clock() < self._next_expiry:
            return self._next_expiry
        now = self.clock()
        gone = [
            b for b, i in self._identities.items() if i.expires is not None and now >= i.expires
        ]
        for blob in gone:
            del self._identities[blob]
        self._changed()
        return self._next_expiry

    @property
    def next_expiry(self) -> float | None:
        return self._next_expiry

    def _changed(self) -> None:
        self._answer = None
        self.any_destinations = any(i.destinations for i in self._identities.values())
        ends = [i.expires for i in self._identities.values() if i.expires is not None]
        self._next_expiry = min(ends) if ends else None

    # -- lock

    @property
    def locked(self) -> bool:
        return self._lock_hash is not None

    def lock(self, passphrase: bytes) -> bool:
        """Lock with ``passphrase``; an empty one is refused, as by ssh-agent."""
        if self.locked or not passphrase:
            return False
        salt = os.urandom(LOCK_SALT_SIZE)
        self._lock_salt = salt
        self._lock_hash = _hash_passphrase(passphrase, salt)
        return True

    def unlock(self, passphrase: bytes) -> UnlockResult:
        """Check the passphrase. While the delay earned by the last wrong passphrase
        runs, an attempt is not checked but deferred to its end (the right passphrase
        then unlocks), so parallel connections cannot guess in parallel."""
        if self._lock_hash is None or self._lock_salt is None or not passphrase:
            return UnlockResult(False, 0.0)
        now = self.clock()
        if now < self._unlock_not_before:
            return UnlockResult(False, self._unlock_not_before - now, deferred=True)
        if hmac.compare_digest(_hash_passphrase(passphrase, self._lock_salt), self._lock_hash):
            self._lock_hash = self._lock_salt = None
            self._failed_unlocks = 0
            self._unlock_not_before = 0.0
            return UnlockResult(True, 0.0)
        self._failed_unlocks += 1
        delay = min(STEP_DELAY * self._failed_unlocks, MAX_DELAY)
        self._unlock_not_before = now + delay
        return UnlockResult(False, delay)
