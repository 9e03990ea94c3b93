"""Per-segment data keys wrapped for X25519 recipients (ECIES: X25519 + HKDF-SHA256 + AES-256-GCM).

wrap: ephemeral X25519 key e; shared = X25519(e, R); kek = HKDF-SHA256(shared, salt=segment_id,
info=INFO || e_pub || R_pub, 32 bytes); wrapped = AES-GCM(kek).encrypt(random nonce, data_key,
aad=INFO || segment_id). The data key itself is never stored.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ftrobot_guard.blackbox.errors import KeyMismatchError
from ftrobot_guard.blackbox.record_format import KeyWrap
from ftrobot_guard.trust.keys import fingerprint, raw_public_bytes

WRAP_INFO = b"ftrobot-blackbox-key-wrap-v1\x00"
DATA_KEY_LEN = 32


def new_data_key() -> bytes:
    """A fresh random AES-256 data key."""
    return os.urandom(DATA_KEY_LEN)


def _kek(shared: bytes, segment_id_raw: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=segment_id_raw, info=WRAP_INFO + eph_pub + recipient_pub
    ).derive(shared)


def wrap_data_key(data_key: bytes, recipient: x25519.X25519PublicKey, segment_id_raw: bytes) -> KeyWrap:
    """Wrap ``data_key`` so that only the holder of ``recipient``'s private key can unwrap it."""
    ephemeral = x25519.X25519PrivateKey.generate()
    eph_pub = raw_public_bytes(ephemeral.public_key())
    recipient_pub = raw_public_bytes(recipient)
    kek = _kek(ephemeral.exchange(recipient), segment_id_raw, eph_pub, recipient_pub)
    nonce = os.urandom(12)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, WRAP_INFO + segment_id_raw)
    return KeyWrap(
        recipient=fingerprint(recipient),
        recipient_key=recipient_pub.hex(),
        ephemeral_key=eph_pub.hex(),
        nonce=nonce.hex(),
        wrapped_key=wrapped.hex(),
    )


def unwrap_data_key(wrap: KeyWrap, private_key: x25519.X25519PrivateKey, segment_id_raw: bytes) -> bytes:
    """Recover the data key; raise KeyMismatchError if ``private_key`` cannot open ``wrap``."""
    own_pub = raw_public_bytes(private_key.public_key())
    if own_pub.hex() != wrap.recipient_key:
        raise KeyMismatchError(f"key {fingerprint(private_key.public_key())} is not the recipient of this wrap")
    eph_pub = bytes.fromhex(wrap.ephemeral_key)
    kek = _kek(
        private_key.exchange(x25519.X25519PublicKey.from_public_bytes(eph_pub)), segment_id_raw, eph_pub, own_pub
    )
    try:
        return AESGCM(kek).decrypt(bytes.fromhex(wrap.nonce), bytes.fromhex(wrap.wrapped_key),
                                   WRAP_INFO + segment_id_raw)
    except InvalidTag:
        raise KeyMismatchError("the key wrap does not open with this key (altered wrap or wrong segment)") from None


def find_wrap(wraps: tuple[KeyWrap, ...] | list[KeyWrap], private_key: x25519.X25519PrivateKey) -> KeyWrap | None:
    """The wrap addressed to ``private_key``'s public key, if any."""
    own = raw_public_bytes(private_key.public_key()).hex()
    for wrap in wraps:
        if wrap.recipient_key == own:
            return wrap
    return None
