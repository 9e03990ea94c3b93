"""Deterministic canonical encoding and Ed25519 signatures over message fields.

A signed ROS message (heartbeat, guardian command, incident report, ...) is turned into a plain
mapping of its fields minus the signature (:func:`message_fields` does that for any rosidl message
without importing rclpy). :func:`canonical_bytes` encodes that mapping deterministically,
prefixed by a domain-separation string such as ``"ftrobot/heartbeat/v1"`` so that a signature
made for one kind of message can never be accepted as another.

Encoding (big-endian lengths, every value tagged with its type)::

    b"FTSF1\\0" + u16 len(domain) + domain(UTF-8) + value(fields)
    value := b"N" bool-false | b"Y" bool-true
           | b"i" + u16 len + decimal ASCII of the integer
           | b"f" + IEEE-754 binary64 (finite only)
           | b"s" + u32 len + UTF-8 | b"b" + u32 len + bytes
           | b"l" + u32 count + values
           | b"d" + u32 count + (key as b"s" value, value)*  with keys sorted by their UTF-8 bytes

Types are strict: ``1`` (int) and ``1.0`` (float) encode differently, ``True`` is not ``1``,
lists and tuples encode alike, and ``bytes``/``bytearray``/``memoryview``/``array('B')`` alike.
NaN, infinities, non-string keys and any other type are refused with :class:`ValueError`.
"""

from __future__ import annotations

import array
import math
import struct
from collections.abc import Mapping
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

HEARTBEAT_DOMAIN = "ftrobot/heartbeat/v1"
SIGNATURE_LENGTH = 64
MAX_DEPTH = 32

_MAGIC = b"FTSF1\x00"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
_TRUE = b"Y"
_FALSE = b"N"


def _domain_prefix(domain: str) -> bytes:
    if not isinstance(domain, str) or not domain:
        raise ValueError(f"signature domain must be a non-empty string, got {domain!r}")
    if not domain.isascii() or not domain.isprintable():
        raise ValueError(f"signature domain {domain!r} must be printable ASCII")
    raw = domain.encode("ascii")
    if len(raw) > 0xFFFF:
        raise ValueError("signature domain is too long")
    return _MAGIC + _U16.pack(len(raw)) + raw


def _encode(value: Any, out: list[bytes], path: str, depth: int) -> None:
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8", "strict")
        out.append(b"s" + _U32.pack(len(raw)))
        out.append(raw)
    elif kind is bool:
        out.append(_TRUE if value else _FALSE)
    elif kind is int:
        digits = str(value).encode("ascii")
        out.append(b"i" + _U16.pack(len(digits)) + digits)
    elif kind is float:
        if not math.isfinite(value):
            raise ValueError(f"field {path or '<root>'}: {value!r} is not a finite number")
        out.append(b"f" + _F64.pack(value))
    elif kind is bytes:
        out.append(b"b" + _U32.pack(len(value)))
        out.append(value)
    elif kind is list or kind is tuple:
        _encode_sequence(value, out, path, depth)
    elif kind is dict:
        _encode_mapping(value, out, path, depth)
    else:
        _encode_other(value, out, path, depth)


def _encode_sequence(value: Any, out: list[bytes], path: str, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise ValueError(f"field {path or '<root>'}: nested deeper than {MAX_DEPTH} levels")
    out.append(b"l" + _U32.pack(len(value)))
    for index, item in enumerate(value):
        _encode(item, out, f"{path}[{index}]", depth + 1)


_KEY_CACHE_LIMIT = 4096
# Key order of a mapping -> its keys sorted by UTF-8 bytes, each with its encoded prefix. Signed
# messages repeat the same field names in the same order, so this is computed once per message type.
_SORTED_KEYS: dict[tuple[str, ...], tuple[tuple[str, bytes], ...]] = {}


def _sorted_encoded_keys(keys: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    cached = _SORTED_KEYS.get(keys)
    if cached is None:
        raws = sorted((key.encode("utf-8", "strict"), key) for key in keys)
        cached = tuple((key, b"s" + _U32.pack(len(raw)) + raw) for raw, key in raws)
        if len(_SORTED_KEYS) < _KEY_CACHE_LIMIT:
            _SORTED_KEYS[keys] = cached
    return cached


def _encode_mapping(value: Mapping[Any, Any], out: list[bytes], path: str, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise ValueError(f"field {path or '<root>'}: nested deeper than {MAX_DEPTH} levels")
    keys = tuple(value)
    for key in keys:
        if type(key) is not str:
            raise ValueError(f"field {path or '<root>'}: key {key!r} is not a string")
    out.append(b"d" + _U32.pack(len(keys)))
    for key, encoded_key in _sorted_encoded_keys(keys):
        out.append(encoded_key)
        _encode(value[key], out, f"{path}.{key}" if path else key, depth + 1)


def _encode_other(value: Any, out: list[bytes], path: str, depth: int) -> None:
    # Subclasses and buffer types are rarer; checked after the exact-type fast path.
    if isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        _encode(int(value), out, path, depth)
    elif isinstance(value, float):
        _encode(float(value), out, path, depth)
    elif isinstance(value, str):
        _encode(str(value), out, path, depth)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _encode(bytes(value), out, path, depth)
    elif isinstance(value, array.array):
        if value.typecode == "B":
            _encode(value.tobytes(), out, path, depth)
        else:
            _encode_sequence(value.tolist(), out, path, depth)
    elif isinstance(value, Mapping):
        _encode_mapping(value, out, path, depth)
    elif isinstance(value, (list, tuple)):
        _encode_sequence(value, out, path, depth)
    else:
        raise ValueError(f"field {path or '<root>'}: unsupported type {type(value).__name__} for signing")


def canonical_bytes(domain: str, fields: Mapping[str, Any]) -> bytes:
    """Deterministic encoding of ``fields`` under ``domain`` (see module doc). Raises ValueError."""
    if not isinstance(fields, Mapping):
        raise ValueError(f"fields must be a mapping, got {type(fields).__name__}")
    out: list[bytes] = [_domain_prefix(domain)]
    try:
        _encode_mapping(fields, out, "", 0)
    except UnicodeEncodeError as exc:
        raise ValueError(f"a string field is not valid UTF-8 ({exc.reason})") from None
    return b"".join(out)


def sign_fields(key: ed25519.Ed25519PrivateKey, domain: str, fields: Mapping[str, Any]) -> bytes:
    """Ed25519 signature (64 bytes) over :func:`canonical_bytes` of ``fields``."""
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"signing key must be an Ed25519 private key, got {type(key).__name__}")
    return key.sign(canonical_bytes(domain, fields))


def verify_fields(
    public_key: ed25519.Ed25519PublicKey, domain: str, fields: Mapping[str, Any], signature: bytes
) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``fields`` under ``domain``.

    False for a wrong signature, a signature that is not 64 bytes, and fields that cannot be
    encoded (NaN, unknown types: a conforming signer can never have signed them).
    """
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise ValueError(f"verification key must be an Ed25519 public key, got {type(public_key).__name__}")
    if not isinstance(signature, (bytes, bytearray, memoryview)) or len(signature) != SIGNATURE_LENGTH:
        return False
    try:
        message = canonical_bytes(domain, fields)
    except ValueError:
        return False
    try:
        public_key.verify(bytes(signature), message)
    except InvalidSignature:
        return False
    return True


def _has_rosidl_fields(value: Any) -> bool:
    getter: Callable[[], Any] | None = getattr(type(value), "get_fields_and_field_types", None)
    return callable(getter)


_PLAIN = (str, bool, int, float, bytes)


def _message_value(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if _has_rosidl_fields(value):
        return message_fields(value, exclude=())
    if isinstance(value, (str, bool, int, float, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, array.array):
        return value.tobytes() if value.typecode == "B" else value.tolist()
    tolist = getattr(value, "tolist", None)  # numpy arrays of fixed-size array fields
    if callable(tolist) and hasattr(value, "dtype"):
        converted = tolist()
        if getattr(value.dtype, "char", "") == "B" and isinstance(converted, list):
            return bytes(converted)
        return converted
    if isinstance(value, (list, tuple)):
        return [_message_value(item) for item in value]
    raise ValueError(f"unsupported message field type {type(value).__name__}")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple(cls.get_fields_and_field_types())  # type: ignore[attr-defined]
        _FIELD_NAMES[cls] = names
    return names


def message_fields(message: Any, exclude: Any = ("signature",)) -> dict[str, Any]:
    """Plain dict of a rosidl message's fields (recursively), without the ``exclude`` fields.

    ``uint8[]`` fields become ``bytes``, other numeric arrays lists, nested messages dicts. Works on
    any object whose class has rosidl's ``get_fields_and_field_types()``; does not import rclpy.
    """
    if not _has_rosidl_fields(message):
        raise ValueError(f"{type(message).__name__} is not a ROS message (no get_fields_and_field_types)")
    result: dict[str, Any] = {}
    for name in _field_names(type(message)):
        if name in exclude:
            continue
        result[name] = _message_value(getattr(message, name))
    return result
