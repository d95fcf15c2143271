"""Private keys in OpenSSH's openssh-key-v1 format (PROTOCOL.key), read and written.

Pure: bytes in, keys out; files are the caller's business.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable

from keytool.errors import FormatError, PassphraseError, WrongPassphraseError
from keytool.keys.base import PrivateKey, PublicKey
from keytool.keys.blob import private_from_reader, public_from_wire
from keytool.record import Record, init
from keytool.wire import Reader, Writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher

MAGIC = b"openssh-key-v1\x00"
BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
END = "-----END OPENSSH PRIVATE KEY-----"
# current OpenSSH writes 24 bcrypt rounds (DEFAULT_ROUNDS in sshkey.c); the man page's 16 is stale
DEFAULT_ROUNDS = 24
DEFAULT_CIPHER = "aes256-ctr"
SALT_SIZE = 16
# refuse absurd work factors from a hostile file rather than spin for hours
MAX_ROUNDS = 1 << 16


class FileCipher(Record):
    """A cipher as used for key files: one call over the whole private section."""

    __slots__ = ("block_size", "decrypt", "encrypt", "iv_size", "key_size", "tag_size")
    key_size: int
    iv_size: int
    block_size: int
    tag_size: int
    decrypt: Callable[[bytes, bytes, bytes, bytes], bytes]  # key, iv, data, tag
    encrypt: Callable[[bytes, bytes, bytes], bytes] | None  # key, iv, data -> data+tag

    def __init__(
        self,
        key_size: int,
        iv_size: int,
        block_size: int,
        tag_size: int,
        decrypt: Callable[[bytes, bytes, bytes, bytes], bytes],
        encrypt: Callable[[bytes, bytes, bytes], bytes] | None,
    ) -> None:
        init(
            self,
            key_size=key_size,
            iv_size=iv_size,
            block_size=block_size,
            tag_size=tag_size,
            decrypt=decrypt,
            encrypt=encrypt,
        )


def _aes_ctr_decrypt(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    dec = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _aes_ctr_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    return _aes_ctr_decrypt(key, iv, data, b"")  # CTR is symmetric


def _aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    # the private section is already padded to the block size: no cipher padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def _3des_cbc_decrypt(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    dec = Cipher(TripleDES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _3des_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    enc = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def _aes_gcm_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).encrypt(iv, data, None)  # ciphertext, then the 16-byte tag


def _aes_gcm_decrypt(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(iv, data + tag, None)
    except InvalidTag:
        raise WrongPassphraseError("incorrect passphrase supplied to decrypt private key") from None


def _chacha_stream(key: bytes, counter: int) -> Cipher[None]:
    """chacha20-poly1305@openssh.com (PROTOCOL.chacha20poly1305) as key files use it:
    sequence number 0 and no length field. The Poly1305 key is the first 32 bytes of
    the keystream block 0 under the main key (the first 32 bytes of ``key``); the
    payload is encrypted from block 1."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    nonce = counter.to_bytes(8, "little") + bytes(8)
    return Cipher(algorithms.ChaCha20(key[:32], nonce), None)


def _chacha_decrypt(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    from cryptography.hazmat.primitives import poly1305

    poly_key = _chacha_stream(key, 0).encryptor().update(bytes(32))
    try:
        poly1305.Poly1305.verify_tag(poly_key, data, tag)
    except Exception:
        raise WrongPassphraseError("incorrect passphrase supplied to decrypt private key") from None
    return _chacha_stream(key, 1).decryptor().update(data)


def _chacha_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import poly1305

    poly_key = _chacha_stream(key, 0).encryptor().update(bytes(32))
    sealed = _chacha_stream(key, 1).encryptor().update(data)
    return sealed + poly1305.Poly1305.generate_tag(poly_key, sealed)


FILE_CIPHERS: dict[str, FileCipher] = {
    "aes256-ctr": FileCipher(32, 16, 16, 0, _aes_ctr_decrypt, _aes_ctr_encrypt),
    "aes192-ctr": FileCipher(24, 16, 16, 0, _aes_ctr_decrypt, _aes_ctr_encrypt),
    "aes128-ctr": FileCipher(16, 16, 16, 0, _aes_ctr_decrypt, _aes_ctr_encrypt),
    "aes256-cbc": FileCipher(32, 16, 16, 0, _aes_cbc_decrypt, _aes_cbc_encrypt),
    "aes192-cbc": FileCipher(24, 16, 16, 0, _aes_cbc_decrypt, _aes_cbc_encrypt),
    "aes128-cbc": FileCipher(16, 16, 16, 0, _aes_cbc_decrypt, _aes_cbc_encrypt),
    "aes256-gcm@openssh.com": FileCipher(32, 12, 16, 16, _aes_gcm_decrypt, _aes_gcm_encrypt),
    "aes128-gcm@openssh.com": FileCipher(16, 12, 16, 16, _aes_gcm_decrypt, _aes_gcm_encrypt),
    "chacha20-poly1305@openssh.com": FileCipher(64, 0, 8, 16, _chacha_decrypt, _chacha_encrypt),
    # OpenSSH 9.2 still writes it with -Z 3des-cbc; kept so such files open
    "3des-cbc": FileCipher(24, 8, 8, 0, _3des_cbc_decrypt, _3des_cbc_encrypt),
}


def check_cipher(name: str) -> str:
    """A cipher name ssh-keygen -Z takes (exact, case-sensitive, as OpenSSH matches it);
    ``none`` is refused: with a passphrase it would leave the key unencrypted."""
    if name == "none":
        raise FormatError(
            "-Z none is not a cipher for a key file: a key with a passphrase is encrypted, "
            "and -N '' makes one without"
        )
    if name not in FILE_CIPHERS:
        raise FormatError(
            f"invalid OpenSSH-format cipher '{name}': use one of {', '.join(FILE_CIPHERS)}"
        )
    return name


def _kdf(passphrase: bytes, salt: bytes, rounds: int, size: int) -> bytes:
    import bcrypt

    derived: bytes = bcrypt.kdf(
        password=passphrase,
        salt=salt,
        desired_key_bytes=size,
        rounds=rounds,
        ignore_few_rounds=True,
    )
    return derived


class OpenSSHKeyFile(Record):
    """What an openssh-key-v1 file says before its private part is opened."""

    __slots__ = ("cipher", "encrypted", "kdf", "public", "rounds", "salt", "tag")
    public: PublicKey
    cipher: str
    kdf: str
    salt: bytes
    rounds: int
    encrypted: bytes  # the private section, still encrypted (tag excluded)
    tag: bytes

    def __init__(
        self,
        public: PublicKey,
        cipher: str,
        kdf: str,
        salt: bytes,
        rounds: int,
        encrypted: bytes,
        tag: bytes,
    ) -> None:
        init(
            self,
            public=public,
            cipher=cipher,
            kdf=kdf,
            salt=salt,
            rounds=rounds,
            encrypted=encrypted,
            tag=tag,
        )

    @property
    def is_encrypted(self) -> bool:
        return self.cipher != "none"


def is_openssh_private(text: bytes) -> bool:
    return text.lstrip().startswith(BEGIN.encode("ascii"))


def _unarmor(text: bytes) -> bytes:
    try:
        lines = text.decode("ascii").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    except UnicodeDecodeError:
        raise FormatError("invalid OpenSSH private key: not ASCII text") from None
    lines = [line.strip() for line in lines]
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        raise FormatError("invalid OpenSSH private key: missing BEGIN/END lines") from None
    body = "".join(lines[start + 1 : end])
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid OpenSSH private key: bad base64") from None


def key_type_named(text: bytes) -> tuple[str, bool]:
    """The key type an openssh-key-v1 file names and whether it is encrypted, read from
    its outer layer alone: for a key of a type keytool does not load (DSA)."""
    data = _unarmor(text)
    if not data.startswith(MAGIC):
        raise FormatError("invalid OpenSSH private key: bad magic")
    r = Reader(data[len(MAGIC) :], "OpenSSH private key")
    cipher = r.ascii()
    r.ascii()  # kdf
    r.string()  # kdf options
    r.uint32()  # number of keys
    return Reader(r.string(), "public key blob").ascii(), cipher != "none"


def parse(text: bytes) -> OpenSSHKeyFile:
    """Parse the outer layer of an openssh-key-v1 file (armored text)."""
    data = _unarmor(text)
    if not data.startswith(MAGIC):
        raise FormatError("invalid OpenSSH private key: bad magic")
    r = Reader(data[len(MAGIC) :], "OpenSSH private key")
    cipher = r.ascii()
    kdf = r.ascii()
    kdf_options = r.string()
    count = r.uint32()
    if count != 1:
        raise FormatError(f"OpenSSH private key files with {count} keys are not supported")
    public = public_from_wire(r.string())
    encrypted = r.string()
    salt, rounds = b"", 0
    if cipher == "none":
        if kdf != "none" or kdf_options:
            raise FormatError("invalid OpenSSH private key: kdf given without a cipher")
        tag = r.rest()
        if tag:
            raise FormatError("invalid OpenSSH private key: trailing bytes")
    else:
        spec = FILE_CIPHERS.get(cipher)
        if spec is None:
            raise FormatError(f"unsupported cipher {cipher!r} in OpenSSH private key")
        if kdf != "bcrypt":
            raise FormatError(f"unsupported kdf {kdf!r} in OpenSSH private key")
        opts = Reader(kdf_options, "bcrypt kdf options")
        salt = opts.string()
        rounds = opts.uint32()
        opts.done()
        # bcrypt_pbkdf refuses an empty salt (as OpenSSH's bcrypt_pbkdf.c does)
        if not salt:
            raise FormatError("invalid OpenSSH private key: empty bcrypt salt")
        if not 1 <= rounds <= MAX_ROUNDS:
            raise FormatError(f"invalid OpenSSH private key: {rounds} kdf rounds")
        tag = r.raw(spec.tag_size)
        r.done()
        if len(encrypted) % spec.block_size:
            raise FormatError("invalid OpenSSH private key: private section not block aligned")
    return OpenSSHKeyFile(public, cipher, kdf, salt, rounds, encrypted, tag)


def decrypt(keyfile: OpenSSHKeyFile, passphrase: bytes | None) -> tuple[PrivateKey, str]:
    """Open the private section; returns the key and its comment."""
    plain = keyfile.encrypted
    if keyfile.is_encrypted:
        if not passphrase:
            raise PassphraseError("the private key is encrypted: a passphrase is needed")
        spec = FILE_CIPHERS[keyfile.cipher]
        secret = _kdf(passphrase, keyfile.salt, keyfile.rounds, spec.key_size + spec.iv_size)
        key, iv = secret[: spec.key_size], secret[spec.key_size :]
        plain = spec.decrypt(key, iv, keyfile.encrypted, keyfile.tag)
    r = Reader(plain, "OpenSSH private key")
    check1, check2 = r.uint32(), r.uint32()
    # a wrong passphrase shows up as mismatching check-ints (PROTOCOL.key)
    if not hmac.compare_digest(check1.to_bytes(4, "big"), check2.to_bytes(4, "big")):
        if keyfile.is_encrypted:
            raise WrongPassphraseError("incorrect passphrase supplied to decrypt private key")
        raise FormatError("invalid OpenSSH private key: check-ints differ")
    private = private_from_reader(r)
    # any bytes, kept as they are (surrogateescape), as ssh-keygen keeps them
    comment = r.string().decode("utf-8", "surrogateescape")
    padding = r.rest()
    if padding != bytes(range(1, len(padding) + 1)):
        raise FormatError("invalid OpenSSH private key: bad padding")
    if private.public != keyfile.public:
        raise FormatError("invalid OpenSSH private key: public and private parts differ")
    return private, comment


def load(text: bytes, passphrase: bytes | None = None) -> tuple[PrivateKey, str]:
    return decrypt(parse(text), passphrase)


def _armor(data: bytes) -> bytes:
    body = base64.b64encode(data).decode("ascii")
    # OpenSSH wraps at 70 columns
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return ("\n".join([BEGIN, *lines, END]) + "\n").encode("ascii")


def dump(
    key: PrivateKey,
    comment: str = "",
    passphrase: bytes | None = None,
    rounds: int = DEFAULT_ROUNDS,
    cipher: str = DEFAULT_CIPHER,
) -> bytes:
    """Serialise ``key`` as an armored openssh-key-v1 file."""
    check = os.urandom(4)
    section = Writer().raw(check + check).raw(key.to_wire()).string(comment).getvalue()
    if passphrase:
        spec = FILE_CIPHERS.get(cipher)
        if spec is None or spec.encrypt is None:
            raise FormatError(f"cannot write key files with cipher {cipher}")
        if not 1 <= rounds <= MAX_ROUNDS:
            raise FormatError(f"kdf rounds must be between 1 and {MAX_ROUNDS}")
        block = spec.block_size
        kdf_name = "bcrypt"
        salt = os.urandom(SALT_SIZE)
        kdf_options = Writer().string(salt).uint32(rounds).getvalue()
    else:
        block, cipher, kdf_name, kdf_options = 8, "none", "none", b""
    pad = (-len(section)) % block
    section += bytes(range(1, pad + 1))
    tag = b""
    if passphrase:
        assert spec is not None and spec.encrypt is not None
        secret = _kdf(passphrase, salt, rounds, spec.key_size + spec.iv_size)
        sealed = spec.encrypt(secret[: spec.key_size], secret[spec.key_size :], section)
        # an AEAD cipher's tag follows the encrypted string, outside it (PROTOCOL.key)
        section, tag = sealed[: len(section)], sealed[len(section) :]
    data = (
        Writer()
        .raw(MAGIC)
        .string(cipher)
        .string(kdf_name)
        .string(kdf_options)
        .uint32(1)
        .string(key.public.to_wire())
        .string(section)
        .raw(tag)
        .getvalue()
    )
    return _armor(data)
