"""Encoding of DATA block payloads: the plaintext that AES-GCM seals (docs/blackbox-format.md §5.1, §5.2).

A DATA record holds the entries of one flush. Before encryption they are encoded here; after
decryption they are decoded here, back to exactly the entries' bytes (lossless, byte for byte).

- Format version 1 (zlib): ``codec byte || entries``, codec 0 (none) or 1 (zlib).
- Format version 2 (zstd): codec 0 (none), 2 (zstd over the entries) or 3 (zstd over the *columnar*
  form of the entries). Both zstd codecs use the segment's dictionary when it has one.

The columnar form groups the entries of a block by (entry identity, data length) and stores each
group column by column: 8-byte words that hold float32 values widened to float64 (what a G1
reports, in sensor_msgs/JointState and Imu) are narrowed to their 32 bits and delta-coded along
the rows; every other byte is XORed with the byte above it. A group that mostly repeats another
stream of the same type (a gate's forward of what it accepted) is first XORed with that stream's
latest entry, so an unchanged forward is zeros. Entry identities (kind, tier, topic, type name,
guardian) become small numbers. Nothing is rounded: the conversion is done on the
bits with integer arithmetic, and a column is narrowed only when every value in it is exactly a
float32 (no NaN, no float32 subnormal), so decoding gives back every byte, padding included.

The segment dictionary (a codebook of entry identities, and a zstd dictionary trained on the
previous segment's columnar blocks) is sealed with the segment's data key and stored in the
signed segment header, so each segment decodes alone.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import struct
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ftrobot_guard.blackbox.errors import FormatError
from ftrobot_guard.blackbox.record_format import ENTRY_HEADER, MAX_SEALED_DICTIONARY_CHARS

MAX_BLOCK_BYTES = 1 << 28  # decoded entries of one block; anything larger is corruption
# Writer-side tuning (issue 7 item 11): columnar blocks at level 6 with a 64 KiB dictionary write ~4%
# fewer bytes a day than the first version 2 writer (level 3, 32 KiB: PREVIOUS_ZSTD_LEVEL,
# PREVIOUS_ZSTD_DICTIONARY_BYTES); a block of one entry stays at level 3 (level 6 gains nothing on one
# small entry and seals it at a third of the rate). Readers depend on neither: any level, any
# dictionary up to the header limit.
ZSTD_LEVEL = 6
ZSTD_SINGLE_ENTRY_LEVEL = 3
PREVIOUS_ZSTD_LEVEL = 3
DICTIONARY_NONCE = b"dict" + bytes(8)  # never a record nonce: those start with 4 zero bytes
DICTIONARY_AAD_DOMAIN = b"ftrobot-blackbox-dictionary-v1\x00"
DICTIONARY_FORMAT = 1
MAX_DICTIONARY_BYTES = 4 << 20  # opened (decompressed) dictionary
ZSTD_DICTIONARY_BYTES = 64 * 1024
PREVIOUS_ZSTD_DICTIONARY_BYTES = 32 * 1024
MAX_CODEBOOK_KEYS = 256
DICTIONARY_MIN_SOURCE_BYTES = 256 * 1024  # entries a segment must have sealed to seed its successor
DICTIONARY_SAMPLES = 1000
DICTIONARY_SAMPLE_BYTES = 8 * 1024  # each sample is cut to this

_KEY_HEAD = struct.Struct(">BBHHH")  # an entry identity: kind, tier, the three string lengths
_TIME = struct.Struct(">Q")
_DATA_LEN = struct.Struct(">I")
_U64 = (1 << 64) - 1
_WORD_OFFSET = 4  # CDR data is aligned from byte 4 (after the encapsulation header)

# float64 bit fields, and the float64 exponents of normal float32 values (1..254 + 896)
_F64_MANTISSA = np.uint64((1 << 52) - 1)
_LOW29 = np.uint64((1 << 29) - 1)
_EXP_F32_MIN, _EXP_F32_MAX, _EXP_BIAS_SHIFT = 897, 1150, 896

U8Array = npt.NDArray[np.uint8]
U64Array = npt.NDArray[np.uint64]


class Codec(enum.IntEnum):
    """First byte of a DATA block's plaintext."""

    NONE = 0  # entries as they are
    ZLIB = 1  # zlib over the entries (format version 1)
    ZSTD = 2  # zstd over the entries (format version 2)
    ZSTD_COLUMNS = 3  # zstd over the columnar form of the entries (format version 2)


class PayloadEncoding(enum.Enum):
    """How a writer encodes blocks; decides the segment's format version."""

    ZLIB = "zlib"  # format version 1
    ZSTD = "zstd"  # format version 2

    @property
    def format_version(self) -> int:
        return 1 if self is PayloadEncoding.ZLIB else 2


CODECS_BY_VERSION = {1: frozenset({Codec.NONE, Codec.ZLIB}), 2: frozenset({Codec.NONE, Codec.ZSTD, Codec.ZSTD_COLUMNS})}


# --------------------------------------------------------------------------- varints


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


class _Reader:
    """Bounds-checked reading of a columnar body; every overrun is a FormatError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self, what: str) -> int:
        data, pos, value, shift = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise FormatError(f"columnar block: {what} is cut short")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise FormatError(f"columnar block: {what} is not a valid varint")
        self.pos = pos
        if value > _U64:
            raise FormatError(f"columnar block: {what} exceeds 64 bits")
        return value

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if size < 0 or end > len(self.data):
            raise FormatError(f"columnar block: {what} needs {size} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk


def _apply_time_delta(previous: int, value: int) -> int:
    delta = value >> 1 if not value & 1 else -((value + 1) >> 1)
    return (previous + delta) & _U64


# --------------------------------------------------------------------------- entries


def _entry_identity(body: bytes, pos: int, strings_end: int) -> bytes:
    """The identity of the entry at ``pos``: kind, tier, the three string lengths, the strings."""
    return body[pos : pos + 2] + body[pos + 10 : pos + 16] + body[pos + ENTRY_HEADER.size : strings_end]


def _is_single_entry(body: bytes) -> bool:
    if len(body) < ENTRY_HEADER.size:
        return False
    _kind, _tier, _time, tlen, ylen, glen, dlen = ENTRY_HEADER.unpack_from(body, 0)
    return bool(ENTRY_HEADER.size + tlen + ylen + glen + dlen == len(body))


def _check_key(key: bytes, where: str) -> bytes:
    if len(key) < _KEY_HEAD.size:
        raise FormatError(f"{where}: entry identity of {len(key)} bytes is too short")
    _kind, _tier, tlen, ylen, glen = _KEY_HEAD.unpack_from(key, 0)
    if tlen + ylen + glen != len(key) - _KEY_HEAD.size:
        raise FormatError(f"{where}: entry identity lengths do not add up")
    return key


# --------------------------------------------------------------------------- segment dictionary


@dataclass(frozen=True)
class SegmentDictionary:
    """What a segment's blocks are encoded against; sealed into the segment header.

    ``keys`` are entry identities (kind, tier, topic, type name, guardian) in their binary form, which
    columnar blocks refer to by number; ``zstd_dictionary`` is a trained zstd dictionary (b"" for none).
    """

    keys: tuple[bytes, ...] = ()
    zstd_dictionary: bytes = b""

    @functools.cached_property
    def index(self) -> dict[bytes, int]:
        """Number of each entry identity in ``keys``."""
        return {key: i for i, key in enumerate(self.keys)}

    def encode(self) -> bytes:
        out = bytearray((DICTIONARY_FORMAT,))
        _put_varint(out, len(self.keys))
        for key in self.keys:
            _put_varint(out, len(key))
            out += key
        _put_varint(out, len(self.zstd_dictionary))
        out += self.zstd_dictionary
        return bytes(out)

    @staticmethod
    def decode(data: bytes) -> SegmentDictionary:
        reader = _Reader(data)
        version = reader.take(1, "dictionary version")[0]
        if version != DICTIONARY_FORMAT:
            raise FormatError(f"segment dictionary format {version} is not supported (this tool reads 1)")
        count = reader.varint("dictionary key count")
        if count > MAX_CODEBOOK_KEYS:
            raise FormatError(f"segment dictionary lists {count} entry identities (at most {MAX_CODEBOOK_KEYS})")
        keys = [_check_key(reader.take(reader.varint("key length"), "dictionary key"), "segment dictionary")
                for _ in range(count)]
        if len(set(keys)) != len(keys):
            raise FormatError("segment dictionary lists an entry identity twice")
        zdict = reader.take(reader.varint("zstd dictionary length"), "zstd dictionary")
        if reader.pos != len(data):
            raise FormatError(f"segment dictionary has {len(data) - reader.pos} trailing bytes")
        return SegmentDictionary(tuple(keys), zdict)


def seal_dictionary(aead: AESGCM, segment_id_raw: bytes, dictionary: SegmentDictionary) -> str:
    """Header text of a dictionary: base64 of AES-256-GCM(data key) over the zstd-compressed encoding."""
    packed = zstandard.ZstdCompressor(level=19).compress(dictionary.encode())
    sealed = aead.encrypt(DICTIONARY_NONCE, packed, DICTIONARY_AAD_DOMAIN + segment_id_raw)
    return base64.b64encode(sealed).decode("ascii")


def open_dictionary(aead: AESGCM, segment_id_raw: bytes, text: str) -> SegmentDictionary:
    """Inverse of :func:`seal_dictionary`; FormatError when it does not authenticate or decode."""
    if len(text) > MAX_SEALED_DICTIONARY_CHARS:
        raise FormatError(f"segment dictionary of {len(text)} characters is implausibly large")
    try:
        sealed = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise FormatError("segment dictionary is not base64") from None
    try:
        packed = aead.decrypt(DICTIONARY_NONCE, sealed, DICTIONARY_AAD_DOMAIN + segment_id_raw)
    except InvalidTag:
        raise FormatError("segment dictionary does not authenticate (altered, or not this segment's key)") from None
    return SegmentDictionary.decode(_zstd_decompress(zstandard.ZstdDecompressor(), packed, MAX_DICTIONARY_BYTES,
                                                     zstandard.FORMAT_ZSTD1))


class DictionaryBuilder:
    """Watches the blocks a segment seals and builds the dictionary of the segment after it."""

    def __init__(self) -> None:
        self._keys: OrderedDict[bytes, None] = OrderedDict()
        self._samples: deque[bytes] = deque(maxlen=DICTIONARY_SAMPLES)
        self.source_bytes = 0

    def observe(self, block: ColumnarBlock) -> None:
        keys = self._keys
        for key in block.keys:
            keys[key] = None
            keys.move_to_end(key)
        while len(keys) > MAX_CODEBOOK_KEYS:
            keys.popitem(last=False)
        self.source_bytes += block.source_bytes
        self._samples.append(block.body[:DICTIONARY_SAMPLE_BYTES])

    @property
    def ready(self) -> bool:
        """Enough has been seen to seed a successor."""
        return self.source_bytes >= DICTIONARY_MIN_SOURCE_BYTES and bool(self._keys)

    @property
    def full(self) -> bool:
        """As many samples as a dictionary is ever trained on."""
        return len(self._samples) == self._samples.maxlen

    def build(self) -> SegmentDictionary | None:
        if not self.ready:
            return None
        samples: list[bytes | bytearray | memoryview[int]] = list(self._samples)
        total = sum(len(s) for s in samples)
        zdict = b""
        size = min(ZSTD_DICTIONARY_BYTES, total // 8)
        if len(samples) >= 16 and size >= 1024:
            try:
                zdict = zstandard.train_dictionary(size, samples, k=1024, d=8, level=ZSTD_LEVEL).as_bytes()
            except zstandard.ZstdError:
                zdict = b""  # too little or too uniform material: the codebook alone still helps
        return SegmentDictionary(tuple(sorted(self._keys)), zdict)  # sorted: stable numbers from segment to segment


# --------------------------------------------------------------------------- zstd


def _zstd_parameters(level: int | None = None) -> zstandard.ZstdCompressionParameters:
    return zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL if level is None else level, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=True,
        write_checksum=False, write_dict_id=False,
    )


def _zstd_dictionary(dictionary: SegmentDictionary | None) -> zstandard.ZstdCompressionDict | None:
    if dictionary is None or not dictionary.zstd_dictionary:
        return None
    return zstandard.ZstdCompressionDict(dictionary.zstd_dictionary, dict_type=zstandard.DICT_TYPE_FULLDICT)


def _zstd_compressor(dictionary: SegmentDictionary | None, level: int | None = None) -> zstandard.ZstdCompressor:
    """A compressor at ``level`` (default ZSTD_LEVEL) with the segment's zstd dictionary, if any."""
    params = _zstd_parameters(level)
    zdict = _zstd_dictionary(dictionary)
    if zdict is None:
        return zstandard.ZstdCompressor(compression_params=params)
    try:
        zdict.precompute_compress(compression_params=params)
    except zstandard.ZstdError:
        raise ValueError("segment dictionary holds an invalid zstd dictionary") from None
    return zstandard.ZstdCompressor(dict_data=zdict, compression_params=params)


def _zstd_decompressor(dictionary: SegmentDictionary | None) -> zstandard.ZstdDecompressor:
    zdict = _zstd_dictionary(dictionary)
    if zdict is None:
        return zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    return zstandard.ZstdDecompressor(dict_data=zdict, format=zstandard.FORMAT_ZSTD1_MAGICLESS)


def _zstd_decompress(dctx: zstandard.ZstdDecompressor, frame: bytes, max_size: int, fmt: int) -> bytes:
    try:
        size = zstandard.get_frame_parameters(frame, format=fmt).content_size
    except zstandard.ZstdError:
        raise FormatError("zstd frame header is malformed") from None
    if size == zstandard.CONTENTSIZE_UNKNOWN or size == zstandard.CONTENTSIZE_ERROR:
        raise FormatError("zstd frame does not state its decoded size")
    if size > max_size:
        raise FormatError(f"zstd frame decodes to {size} bytes, more than {max_size}")
    try:
        body = dctx.decompress(frame)
    except zstandard.ZstdError as exc:
        raise FormatError(f"zstd frame does not decompress: {exc}") from None
    if len(body) != size:
        raise FormatError(f"zstd frame decoded to {len(body)} bytes, its header says {size}")
    return body


# --------------------------------------------------------------------------- columnar form


def _float32_exact(words: U64Array) -> npt.NDArray[np.bool_]:
    """Which float64 bit patterns are exactly a float32 value: zero, normal, or infinite (never NaN)."""
    exponent = (words >> np.uint64(52)) & np.uint64(0x7FF)
    mantissa = words & _F64_MANTISSA
    normal = (exponent >= _EXP_F32_MIN) & (exponent <= _EXP_F32_MAX) & ((mantissa & _LOW29) == 0)
    zero_or_inf = ((exponent == 0) | (exponent == 0x7FF)) & (mantissa == 0)
    result: npt.NDArray[np.bool_] = normal | zero_or_inf
    return result


def _narrow(words: U64Array) -> npt.NDArray[np.int64]:
    """float32 bits of float64 bit patterns that :func:`_float32_exact` accepts (integer arithmetic only;
    meaningless for the others)."""
    exponent = ((words >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    exp32 = np.clip(exponent - _EXP_BIAS_SHIFT, 0, 255)
    sign = (words >> np.uint64(63)).astype(np.int64) << 31
    mantissa = ((words & _F64_MANTISSA) >> np.uint64(29)).astype(np.int64)
    result: npt.NDArray[np.int64] = sign | (exp32 << 23) | mantissa
    return result


def _widen(bits: npt.NDArray[np.int64]) -> U64Array:
    """Inverse of :func:`_narrow`; FormatError for float32 patterns it never produces (NaN, subnormal)."""
    exp32 = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    if bool(np.any(((exp32 == 0) | (exp32 == 255)) & (mantissa != 0))):
        raise FormatError("columnar block: a narrowed column holds a NaN or subnormal, which is never narrowed")
    exponent = np.where(exp32 == 0, 0, np.where(exp32 == 255, 0x7FF, exp32 + _EXP_BIAS_SHIFT))
    wide = ((bits >> 31) << 63) | (exponent << 52) | (mantissa << 29)
    return wide.astype(np.uint64)


def _word_count(length: int) -> int:
    return max(0, (length - _WORD_OFFSET) // 8)


def _rest_mask(length: int, narrowed: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    mask = np.ones(length, bool)
    if narrowed.size:
        mask[_WORD_OFFSET : _WORD_OFFSET + 8 * narrowed.size] = ~np.repeat(narrowed, 8)
    return mask


def _encode_groups(groups: list[U8Array], out: bytearray) -> None:
    """Append the columns of each group (a ``rows x length`` matrix of the group's data)."""
    regions = [np.ascontiguousarray(rows[:, _WORD_OFFSET : _WORD_OFFSET + 8 * _word_count(rows.shape[1])])
               .view("<u8").ravel() for rows in groups]
    flat = np.concatenate(regions) if regions else np.zeros(0, np.uint64)
    exact_all, bits_all = _float32_exact(flat), _narrow(flat)
    offset = 0
    for rows in groups:
        count, length = rows.shape
        words = _word_count(length)
        narrowed: npt.NDArray[np.bool_] = np.zeros(0, bool)
        if words:
            exact = exact_all[offset : offset + count * words].reshape(count, words)
            bits = bits_all[offset : offset + count * words].reshape(count, words)
            offset += count * words
            narrowed = np.asarray(exact.all(axis=0))
            out += np.packbits(narrowed).tobytes()
            if narrowed.any():
                delta = np.diff(bits[:, narrowed], axis=0, prepend=0)
                delta = ((delta + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # int32 wrap-around
                zigzag = np.ascontiguousarray(((delta << 1) ^ (delta >> 63)).astype("<u4"))
                out += zigzag.view(np.uint8).reshape(count, -1, 4).transpose(2, 1, 0).tobytes()
        rest = rows[:, _rest_mask(length, narrowed)]
        residual = rest.copy()
        np.bitwise_xor(rest[1:], rest[:-1], out=residual[1:])
        out += residual.T.tobytes()


def _decode_group(reader: _Reader, count: int, length: int) -> U8Array:
    matrix = np.empty((count, length), np.uint8)
    words = _word_count(length)
    narrowed = np.zeros(0, bool)
    if words:
        flags = np.unpackbits(np.frombuffer(reader.take((words + 7) // 8, "column flags"), np.uint8))
        if flags[words:].any():
            raise FormatError("columnar block: column flags set past the last column")
        narrowed = flags[:words].astype(bool)
        k = int(narrowed.sum())
        if k:
            planes = np.frombuffer(reader.take(4 * k * count, "narrowed columns"), np.uint8).reshape(4, k, count)
            zigzag = np.ascontiguousarray(planes.transpose(2, 1, 0)).view("<u4").reshape(count, k).astype(np.int64)
            bits = np.cumsum((zigzag >> 1) ^ -(zigzag & 1), axis=0) & 0xFFFFFFFF
            wide = np.ascontiguousarray(_widen(bits).astype("<u8")).view(np.uint8).reshape(count, k * 8)
            region = matrix[:, _WORD_OFFSET : _WORD_OFFSET + 8 * words]
            region[:, np.repeat(narrowed, 8)] = wide
    mask = _rest_mask(length, narrowed)
    width = int(mask.sum())
    residual = np.frombuffer(reader.take(width * count, "byte columns"), np.uint8).reshape(width, count).T
    matrix[:, mask] = np.bitwise_xor.accumulate(residual, axis=0)
    return matrix


@dataclass(frozen=True)
class ColumnarBlock:
    """A block's entries in columnar form, with what the dictionary builder learns from it."""

    body: bytes
    keys: tuple[bytes, ...]  # the entry identities it holds
    entries: int
    source_bytes: int  # size of the entries it encodes


def _put_varints(out: bytearray, values: npt.NDArray[np.uint64]) -> None:
    """LEB128 of many values at once (the same bytes as :func:`_put_varint` one by one)."""
    if len(values) < 32:
        for value in values.tolist():
            _put_varint(out, value)
        return
    shifts = np.arange(0, 64, 7, dtype=np.uint64)  # 10 groups of 7 bits
    groups = (values[:, None] >> shifts[None, :]) & np.uint64(0x7F)
    more = np.zeros(groups.shape, bool)  # another byte follows
    more[:, :-1] = values[:, None] >= (np.uint64(1) << shifts[1:])[None, :]
    present = np.ones_like(more)
    present[:, 1:] = more[:, :-1]
    encoded = (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8)
    out += encoded[present].tobytes()


def _reference_rows(linked: U8Array, order: npt.NDArray[np.integer], link: int, group: int) -> U8Array:
    """For each entry of ``group``: the latest entry of group ``link`` before it in block order (rows of
    ``linked``, the link's data), zeros where the link has none yet."""
    ref = np.searchsorted(np.flatnonzero(order == link), np.flatnonzero(order == group)) - 1
    rows = linked[np.maximum(ref, 0)]
    rows[ref < 0] = 0
    result: U8Array = rows
    return result


def _type_name(key: bytes) -> bytes:
    _kind, _tier, tlen, ylen, _glen = _KEY_HEAD.unpack_from(key, 0)
    return key[_KEY_HEAD.size + tlen : _KEY_HEAD.size + tlen + ylen]


def _choose_links(groups: list[tuple[bytes, int]], matrices: list[U8Array],
                  order: npt.NDArray[np.integer]) -> list[int]:
    """Cross-stream references (docs/blackbox-format.md §5.2): a group is linked to an earlier group of
    the same type name and data length when at least half of its entries equal the link's latest entry
    before them (a gate forwarding what it accepts unchanged); -1: not linked."""
    links = [-1] * len(groups)
    seen: dict[tuple[bytes, int], list[int]] = {}
    for g, (key, length) in enumerate(groups):
        candidates = seen.setdefault((_type_name(key), length), [])
        best, best_matches = -1, 0
        for a in candidates:
            matches = int(np.all(matrices[g] == _reference_rows(matrices[a], order, a, g), axis=1).sum())
            if matches > best_matches:
                best, best_matches = a, matches
        if best >= 0 and 2 * best_matches >= len(matrices[g]):
            links[g] = best
        candidates.append(g)
    return links


def encode_columns(body: bytes, dictionary: SegmentDictionary | None = None,
                   base_time_ns: int = 0) -> ColumnarBlock | None:
    """Columnar form of a block's entries (docs/blackbox-format.md §5.2), or None when ``body`` is not
    a sequence of entries. Entry times are coded as differences, the first from ``base_time_ns`` (the
    record's own time)."""
    codebook = dictionary.index if dictionary is not None else {}
    groups: dict[tuple[bytes, int], int] = {}
    group_rows: list[list[bytes]] = []
    group_of: list[int] = []
    times: list[int] = []
    unpack, head = ENTRY_HEADER.unpack_from, ENTRY_HEADER.size
    pos, end = 0, len(body)
    while pos < end:
        if pos + head > end:
            return None
        _kind, _tier, time_ns, tlen, ylen, glen, dlen = unpack(body, pos)
        data_at = pos + head + tlen + ylen + glen
        stop = data_at + dlen
        if stop > end:
            return None
        group = (_entry_identity(body, pos, data_at), dlen)
        index = groups.get(group)
        if index is None:
            index = groups[group] = len(group_rows)
            group_rows.append([])
        group_rows[index].append(body[data_at:stop])
        group_of.append(index)
        times.append(time_ns)
        pos = stop
    order = np.frombuffer(bytes(group_of), np.uint8) if len(groups) < 0x100 else np.array(group_of)
    matrices = [np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), length)
                for (_key, length), rows in zip(groups, group_rows, strict=True)]
    links = _choose_links(list(groups), matrices, order)
    out = bytearray()
    _put_varint(out, len(groups))
    local: dict[bytes, int] = {}
    for (key, length), link in zip(groups, links, strict=True):
        index = codebook.get(key)
        if index is None:
            index = local.get(key)
        if index is None:
            local[key] = len(codebook) + len(local)
            out.append(0)
            _put_varint(out, len(key))
            out += key
        else:
            _put_varint(out, index + 1)
        _put_varint(out, length)
        _put_varint(out, link + 1)
    _put_varint(out, len(group_of))
    if len(groups) < 0x80:
        out += bytes(group_of)
    else:
        for index in group_of:
            _put_varint(out, index)
    stamps = np.array(times, dtype=np.uint64)
    delta = np.diff(stamps, prepend=np.uint64(base_time_ns & _U64)).view(np.int64)  # modulo 2^64
    _put_varints(out, ((delta << 1) ^ (delta >> 63)).view(np.uint64))
    residuals = [rows ^ _reference_rows(matrices[link], order, link, g) if link >= 0 else rows
                 for g, (rows, link) in enumerate(zip(matrices, links, strict=True))]
    _encode_groups(residuals, out)
    return ColumnarBlock(bytes(out), tuple(key for key, _length in groups), len(group_of), len(body))


def decode_columns(body: bytes, dictionary: SegmentDictionary | None, max_size: int = MAX_BLOCK_BYTES,
                   base_time_ns: int = 0) -> bytes:
    """Entries bytes of a columnar body; FormatError when it is malformed."""
    keys: list[bytes] = list(dictionary.keys) if dictionary is not None else []
    reader = _Reader(body)
    group_count = reader.varint("group count")
    if group_count > len(body):
        raise FormatError(f"columnar block claims {group_count} groups in {len(body)} bytes")
    groups: list[tuple[bytes, int]] = []
    links: list[int] = []
    for _ in range(group_count):
        code = reader.varint("entry identity")
        if code == 0:
            keys.append(_check_key(reader.take(reader.varint("identity length"), "entry identity"), "columnar block"))
            key = keys[-1]
        elif code - 1 < len(keys):
            key = keys[code - 1]
        else:
            raise FormatError(f"columnar block refers to entry identity {code - 1}, only {len(keys)} known")
        length = reader.varint("data length")
        if length > 0xFFFFFFFF:
            raise FormatError("columnar block: a data length exceeds 32 bits")
        link = reader.varint("group link") - 1
        if link >= len(groups) or (link >= 0 and groups[link][1] != length):
            raise FormatError(f"columnar block links group {len(groups)} to group {link}, which is not an earlier"
                              " group of the same data length")
        groups.append((key, length))
        links.append(link)
    count = reader.varint("entry count")
    if count > len(body):
        raise FormatError(f"columnar block claims {count} entries in {len(body)} bytes")
    group_of = [reader.varint("entry group") for _ in range(count)]
    rows = [0] * group_count
    for index in group_of:
        if index >= group_count:
            raise FormatError(f"columnar block puts an entry in group {index}, only {group_count} defined")
        rows[index] += 1
    if 0 in rows:
        raise FormatError("columnar block defines a group without entries")
    total = sum(n * (ENTRY_HEADER.size - _KEY_HEAD.size + len(key) + length)
                for n, (key, length) in zip(rows, groups, strict=True))
    if total > max_size:
        raise FormatError(f"columnar block decodes to {total} bytes, more than {max_size}")
    times: list[int] = []
    time_ns = base_time_ns & _U64
    for _ in range(count):
        time_ns = _apply_time_delta(time_ns, reader.varint("entry time"))
        times.append(time_ns)
    data = [_decode_group(reader, n, length) for n, (_key, length) in zip(rows, groups, strict=True)]
    if reader.pos != len(body):
        raise FormatError(f"columnar block has {len(body) - reader.pos} trailing bytes")
    order = np.array(group_of)
    for g, link in enumerate(links):
        if link >= 0:  # links point to earlier groups, already resolved
            data[g] ^= _reference_rows(data[link], order, link, g)
    taken = [0] * group_count
    parts: list[bytes] = []
    for index, time_ns in zip(group_of, times, strict=True):
        key, length = groups[index]
        row = data[index][taken[index]].tobytes()
        taken[index] += 1
        parts += (key[:2], _TIME.pack(time_ns), key[2:8], _DATA_LEN.pack(length), key[8:], row)
    return b"".join(parts)


# --------------------------------------------------------------------------- blocks


class PayloadEncoder:
    """Encodes the DATA blocks of one segment (writer side).

    ``generation`` says how the dictionary came about: 0 none (the first segment after a start),
    1 trained on blocks that had no codebook yet (their identities spelt out), 2 trained on blocks
    coded like the ones it will compress (the steady state)."""

    def __init__(self, encoding: PayloadEncoding, level: int = 1, dictionary: SegmentDictionary | None = None,
                 generation: int = 2) -> None:
        if encoding is PayloadEncoding.ZLIB and dictionary is not None:
            raise ValueError("format version 1 (zlib) has no segment dictionary")
        self.encoding = encoding
        self.dictionary = dictionary
        self.generation = generation if dictionary is not None else 0
        self._level = level
        self._cctx = _zstd_compressor(dictionary) if encoding is PayloadEncoding.ZSTD else None
        separate = encoding is PayloadEncoding.ZSTD and ZSTD_SINGLE_ENTRY_LEVEL != ZSTD_LEVEL
        self._cctx_single = _zstd_compressor(dictionary, ZSTD_SINGLE_ENTRY_LEVEL) if separate else self._cctx
        self.builder = DictionaryBuilder() if encoding is PayloadEncoding.ZSTD else None

    def encode(self, entry_bytes: bytes, time_ns: int = 0) -> bytes:
        """Plaintext of a DATA record sealed at ``time_ns``: a codec byte and the entries, compressed
        when that makes them smaller."""
        if self._level <= 0:
            return bytes((Codec.NONE,)) + entry_bytes
        if self._cctx is None:
            packed = zlib.compress(entry_bytes, self._level)
            codec = Codec.ZLIB
        else:
            block = None if _is_single_entry(entry_bytes) else encode_columns(entry_bytes, self.dictionary, time_ns)
            if block is not None:
                assert self.builder is not None
                self.builder.observe(block)
                packed = self._cctx.compress(block.body)
                codec = Codec.ZSTD_COLUMNS
            else:
                assert self._cctx_single is not None
                packed = self._cctx_single.compress(entry_bytes)
                codec = Codec.ZSTD
        if len(packed) < len(entry_bytes):
            return bytes((codec,)) + packed
        return bytes((Codec.NONE,)) + entry_bytes

    def next_dictionary(self) -> SegmentDictionary | None:
        """Dictionary for the segment after this one (None when too little was seen)."""
        return self.builder.build() if self.builder is not None else None

    @property
    def wants_new_dictionary(self) -> bool:
        """A better dictionary can be built now than the one in use: after a start, as soon as there is
        material (generation 0), and once more when a full set of codebook-coded samples is in (1)."""
        builder = self.builder
        if builder is None or self.generation >= 2 or not builder.ready:
            return False
        return self.generation == 0 or builder.full


class PayloadDecoder:
    """Decodes the DATA blocks of one segment (reader side)."""

    def __init__(self, version: int, dictionary: SegmentDictionary | None = None) -> None:
        if version not in CODECS_BY_VERSION:
            raise FormatError(f"no DATA block codecs for format version {version}")
        if version == 1 and dictionary is not None:
            raise FormatError("format version 1 has no segment dictionary")
        self.version = version
        self.dictionary = dictionary
        self._dctx = _zstd_decompressor(dictionary) if version >= 2 else None

    def decode(self, plaintext: bytes, max_size: int = MAX_BLOCK_BYTES, time_ns: int = 0) -> bytes:
        """Entries bytes of the plaintext of a DATA record sealed at ``time_ns``; FormatError when malformed."""
        if not plaintext:
            raise FormatError("empty DATA block")
        codec = plaintext[0]
        if codec not in CODECS_BY_VERSION[self.version]:
            raise FormatError(f"DATA block uses codec {codec}, unknown in format version {self.version}")
        payload = plaintext[1:]
        if codec == Codec.NONE:
            if len(payload) > max_size:
                raise FormatError(f"DATA block holds more than {max_size} bytes")
            return payload
        if codec == Codec.ZLIB:
            inflater = zlib.decompressobj()
            try:
                body = inflater.decompress(payload, max_size)
            except zlib.error as exc:
                raise FormatError(f"DATA block does not decompress: {exc}") from None
            if inflater.unconsumed_tail:
                raise FormatError(f"DATA block decompresses to more than {max_size} bytes")
            return body
        assert self._dctx is not None
        body = _zstd_decompress(self._dctx, payload, max_size, zstandard.FORMAT_ZSTD1_MAGICLESS)
        if codec == Codec.ZSTD:
            return body
        return decode_columns(body, self.dictionary, max_size, time_ns)
