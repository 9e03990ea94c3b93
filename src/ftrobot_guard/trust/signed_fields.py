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

:func:`message_canonical_bytes` encodes a rosidl message directly, in one pass with a field order
computed once per message type; it gives exactly ``canonical_bytes(domain, message_fields(message))``
without building the field mapping (the department monitor verifies every heartbeat this way).
"""

from __future__ import annotations

import array
import math
import operator
import struct
from collections.abc import Callable, Mapping
from typing import Any

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


_DOMAIN_PREFIXES: dict[str, bytes] = {}


def _cached_domain_prefix(domain: str) -> bytes:
    prefix = _DOMAIN_PREFIXES.get(domain) if type(domain) is str else None
    if prefix is None:
        prefix = _domain_prefix(domain)
        if len(_DOMAIN_PREFIXES) < _KEY_CACHE_LIMIT:
            _DOMAIN_PREFIXES[domain] = prefix
    return prefix


def canonical_bytes(domain: str, fields: Mapping[str, Any]) -> bytes:
    """Deterministic encoding of ``fields`` under ``domain`` (see module doc). Raises ValueError."""
    if not isinstance(fields, Mapping):
        raise ValueError(f"fields must be a mapping, got {type(fields).__name__}")
    out: list[bytes] = [_cached_domain_prefix(domain)]
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


# -- direct encoding of rosidl messages ------------------------------------------------------------

FieldGetter = Callable[[Any], tuple[Any, ...]]
_GETTERS: dict[tuple[type, tuple[str, ...]], FieldGetter] = {}


def _reads_its_slots(cls: type, names: tuple[str, ...]) -> bool:
    """True when each field ``name`` of ``cls`` is a property returning the slot ``_name``, as rosidl generates.

    Checked once per class on a default instance: every property must return its slot's very object.
    """
    slots = set(getattr(cls, "__slots__", ()))
    if not all(f"_{name}" in slots and isinstance(getattr(cls, name, None), property) for name in names):
        return False
    try:
        sample = cls()
        return all(getattr(sample, name) is getattr(sample, f"_{name}") for name in names)
    except Exception:
        return False


def message_field_getter(cls: type, names: tuple[str, ...]) -> FieldGetter:
    """A function returning the values of fields ``names`` of a ``cls`` message as one tuple, in that order.

    rosidl messages keep each field in a slot behind a Python property; the getter reads the slots
    in one C call (the properties cost a Python call each). Other classes are read by attribute.
    """
    getter = _GETTERS.get((cls, names))
    if getter is None:
        attributes = tuple(f"_{name}" for name in names) if _reads_its_slots(cls, names) else names
        if len(attributes) == 1:
            single = operator.attrgetter(attributes[0])
            getter = lambda message: (single(message),)  # noqa: E731
        else:
            getter = operator.attrgetter(*attributes)
        if len(_GETTERS) < _KEY_CACHE_LIMIT:
            _GETTERS[(cls, names)] = getter
    return getter


# (message class, excluded field names) -> (b"d" + count, encoded keys sorted by their bytes, their values' getter)
_MessagePlan = tuple[bytes, tuple[bytes, ...], FieldGetter]
_MESSAGE_PLANS: dict[tuple[type, tuple[str, ...]], _MessagePlan] = {}


def _message_plan(cls: type, exclude: tuple[str, ...]) -> _MessagePlan:
    plan = _MESSAGE_PLANS.get((cls, exclude))
    if plan is None:
        names = tuple(name for name in _field_names(cls) if name not in exclude)
        for name in names:
            if type(name) is not str:
                raise ValueError(f"{cls.__name__}: field name {name!r} is not a string")
        keys = _sorted_encoded_keys(names)
        getter = message_field_getter(cls, tuple(name for name, _ in keys)) if keys else (lambda _message: ())
        plan = (b"d" + _U32.pack(len(keys)), tuple(encoded for _, encoded in keys), getter)
        if len(_MESSAGE_PLANS) < _KEY_CACHE_LIMIT:
            _MESSAGE_PLANS[(cls, exclude)] = plan
    return plan


_NESTED_PLANS: dict[type, _MessagePlan] = {}  # plans of nested messages (nothing excluded), by class


def _nested_plan(value: Any) -> _MessagePlan | None:
    """The plan of a nested message, or None when ``value`` is not a rosidl message."""
    kind = type(value)
    plan = _NESTED_PLANS.get(kind)
    if plan is None and _has_rosidl_fields(value):
        plan = _message_plan(kind, ())
        if len(_NESTED_PLANS) < _KEY_CACHE_LIMIT:
            _NESTED_PLANS[kind] = plan
    return plan


def _encode_message(message: Any, plan: _MessagePlan, out: list[bytes], depth: int) -> None:
    """Append the encoding of ``message_fields(message)`` (as planned) to ``out``.

    The common field types are encoded inline; anything else goes through :func:`_message_value` and
    :func:`_encode`, so the result is byte-for-byte that of the mapping path. Error messages carry no
    field path (the caller re-encodes through the mapping path to name it).
    """
    if depth >= MAX_DEPTH:
        raise ValueError(f"message nested deeper than {MAX_DEPTH} levels")
    header, keys, getter = plan
    append = out.append
    append(header)
    for encoded_key, value in zip(keys, getter(message), strict=True):
        append(encoded_key)
        kind = type(value)
        if kind is str:
            raw = value.encode("utf-8", "strict")
            append(b"s" + _U32.pack(len(raw)))
            append(raw)
        elif kind is int:
            digits = str(value).encode("ascii")
            append(b"i" + _U16.pack(len(digits)) + digits)
        elif kind is float:
            if value - value != 0.0:  # NaN or infinite
                raise ValueError(f"{value!r} is not a finite number")
            append(b"f" + _F64.pack(value))
        elif kind is bool:
            append(_TRUE if value else _FALSE)
        elif kind is array.array and value.typecode == "B":
            append(b"b" + _U32.pack(len(value)))
            append(value.tobytes())
        elif kind is list:
            append(b"l" + _U32.pack(len(value)))
            for item in value:
                nested = _NESTED_PLANS.get(type(item)) or _nested_plan(item)
                if nested is not None:
                    _encode_message(item, nested, out, depth + 2)
                else:
                    _encode(_message_value(item), out, "", depth + 2)
        else:
            nested = _NESTED_PLANS.get(kind) or _nested_plan(value)
            if nested is not None:
                _encode_message(value, nested, out, depth + 1)
            else:
                _encode(_message_value(value), out, "", depth + 1)


def message_canonical_bytes(domain: str, message: Any, exclude: tuple[str, ...] = ("signature",)) -> bytes:
    """``canonical_bytes(domain, message_fields(message, exclude))``, encoded straight from the message.

    Same bytes, same refusals (:class:`ValueError`), without building the intermediate mapping; the
    field order and the field getter of each message type are computed once. Does not import rclpy.
    """
    if not _has_rosidl_fields(message):
        raise ValueError(f"{type(message).__name__} is not a ROS message (no get_fields_and_field_types)")
    out: list[bytes] = [_cached_domain_prefix(domain)]
    try:
        _encode_message(message, _message_plan(type(message), tuple(exclude)), out, 0)
    except (ValueError, UnicodeEncodeError):
        # Name the offending field exactly as the mapping path does (this raises ValueError).
        canonical_bytes(domain, message_fields(message, exclude))
        raise
    return b"".join(out)
