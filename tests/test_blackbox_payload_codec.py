"""DATA block payload codec (format version 2): lossless round trips, hostile input, the segment
dictionary sealed in the header, and whole logs that mix version 1 and version 2 segments."""

from __future__ import annotations

import math
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from blackbox_testkit import make_keys, segments
from ftrobot_guard.blackbox import payload_codec as pc
from ftrobot_guard.blackbox.errors import FormatError
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter
from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
from ftrobot_guard.blackbox.payload_codec import (
    Codec,
    DictionaryBuilder,
    PayloadDecoder,
    PayloadEncoder,
    PayloadEncoding,
    SegmentDictionary,
    decode_columns,
    encode_columns,
    open_dictionary,
    seal_dictionary,
)
from ftrobot_guard.blackbox.record_format import (
    Entry,
    EntryKind,
    SegmentHeader,
    Tier,
    canonical_json,
    decode_entries,
    encode_entry,
    encode_segment_prefix,
    parse_segment_prefix,
)
from ftrobot_guard.blackbox.verification import verify_log

TOPICS = ("joint_states", "imu", "hw/cmd_vel", "guard/in/cmd_vel", "/blackbox/notice")
TYPES = ("sensor_msgs/msg/JointState", "sensor_msgs/msg/Imu", "geometry_msgs/msg/Twist")
JOINTS = 29

# float64 values a robot records: float32 values widened (what a G1 reports), full doubles, and the
# awkward ones: signed zeros, infinities, NaNs with payloads, float32 and float64 subnormals
special_doubles = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e-40, 1.4e-45,
                                   3.4028234663852886e38, float(np.float32(1e-38)), -1.5, 2.0**-126, 2.0**-149,
                                   2.0**127 * 1.5])
nan_patterns = st.integers(0, (1 << 52) - 1).map(
    lambda m: struct.unpack("<d", struct.pack("<Q", (0x7FF << 52) | m | 1))[0])
float32_values = st.floats(width=32, allow_nan=True, allow_infinity=True)
doubles = st.one_of(float32_values, st.floats(allow_nan=True, allow_infinity=True), special_doubles, nan_patterns)


@st.composite
def cdr_like_data(draw: st.DrawFn) -> bytes:
    """Message bytes shaped like CDR: a 4-byte encapsulation header, a stamp, then float64 words
    (what JointState, Imu, Twist mostly are), sometimes with a ragged tail."""
    head = draw(st.binary(min_size=4, max_size=4)) + draw(st.binary(min_size=8, max_size=8))
    values = draw(st.lists(doubles, max_size=12))
    tail = draw(st.binary(max_size=7))
    return head + struct.pack(f"<{len(values)}d", *values) + tail


entries = st.builds(
    Entry,
    time_ns=st.one_of(st.integers(0, 2**64 - 1), st.integers(1_780_000_000 * 10**9, 1_780_000_001 * 10**9)),
    topic=st.one_of(st.sampled_from(TOPICS), st.text(max_size=20)),
    type_name=st.sampled_from(TYPES),
    data=st.one_of(cdr_like_data(), st.binary(max_size=80)),
    guardian=st.sampled_from(["", "G-440304-0007"]),
    tier=st.sampled_from(list(Tier)),
    kind=st.sampled_from(list(EntryKind)),
)


def _body(items: list[Entry]) -> bytes:
    return b"".join(encode_entry(e) for e in items)


def _columns(body: bytes, dictionary: SegmentDictionary | None = None, record_time: int = 0) -> pc.ColumnarBlock:
    block = encode_columns(body, dictionary, record_time)
    assert block is not None
    return block


def _dictionary_from(items: list[Entry]) -> SegmentDictionary:
    return SegmentDictionary(tuple(sorted(set(_columns(_body(items)).keys))))


# --------------------------------------------------------------------------- lossless round trips


@st.composite
def forwarded_streams(draw: st.DrawFn) -> list[Entry]:
    """A command stream, its forward on another topic (a copy of the latest command, sometimes changed,
    sometimes before any command), and an unrelated stream of the same type, interleaved at random."""
    length = draw(st.integers(0, 60))
    data = st.binary(min_size=length, max_size=length)
    items: list[Entry] = []
    latest: bytes | None = None
    for step in range(draw(st.integers(1, 30))):
        which = draw(st.sampled_from(["command", "forward", "forward", "other"]))
        if which == "command":
            latest = draw(data)
            items.append(Entry(step, "/guard/in/cmd_vel", "geometry_msgs/msg/Twist", latest))
        elif which == "forward":
            same = latest is not None and draw(st.integers(0, 3)) > 0
            items.append(Entry(step, "/hw/cmd_vel", "geometry_msgs/msg/Twist", latest if same and latest else draw(data)))
        else:
            items.append(Entry(step, "/other", "geometry_msgs/msg/Twist", draw(data)))
    return items


@settings(max_examples=200, deadline=None)
@given(forwarded_streams(), st.booleans())
def test_cross_stream_references_give_back_every_byte(items: list[Entry], with_dictionary: bool) -> None:
    body = _body(items)
    dictionary = _dictionary_from(items) if with_dictionary else None
    assert decode_columns(_columns(body, dictionary, 5).body, dictionary, base_time_ns=5) == body


def test_an_unchanged_forward_costs_almost_nothing() -> None:
    """hw/cmd_vel is the gate's forward of guard/in/cmd_vel: coded against it, an unchanged copy is zeros."""
    rng = random.Random(3)
    commands = [struct.pack("<4x6d", rng.random(), 0, 0, 0, 0, rng.random()) for _ in range(2)]
    alone = _body([Entry(i, "/guard/in/cmd_vel", "geometry_msgs/msg/Twist", c) for i, c in enumerate(commands)])
    paired = _body([e for i, c in enumerate(commands) for e in (
        Entry(2 * i, "/guard/in/cmd_vel", "geometry_msgs/msg/Twist", c),
        Entry(2 * i + 1, "/hw/cmd_vel", "geometry_msgs/msg/Twist", c))])
    forward = _columns(paired).body.split(b"geometry_msgs/msg/Twist")[-1]  # after the forward's identity
    assert forward[:2] == bytes([52, 1])  # data length 52, linked to group 0 (the commands)
    assert not any(_columns(paired).body[-2 * 52 + 48:])  # its data columns (6 words narrowed to 4 bytes): zeros
    cctx = pc._zstd_compressor(None)  # the identity spelt out once (no dictionary here), a few bytes per entry
    assert len(cctx.compress(_columns(paired).body)) <= len(cctx.compress(_columns(alone).body)) + 45


@settings(max_examples=150, deadline=None)
@given(st.lists(entries, max_size=12), st.lists(entries, max_size=6), st.booleans(), st.integers(0, 2**64 - 1))
def test_columnar_form_gives_back_every_byte(items: list[Entry], seen_before: list[Entry],
                                             with_dictionary: bool, record_time: int) -> None:
    body = _body(items)
    dictionary = _dictionary_from(seen_before + items[:2]) if with_dictionary else None
    block = _columns(body, dictionary, record_time)
    assert decode_columns(block.body, dictionary, base_time_ns=record_time) == body
    assert block.entries == len(items) and block.source_bytes == len(body)


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, max_size=10), st.integers(0, 9), st.sampled_from(list(PayloadEncoding)),
       st.integers(0, 2**64 - 1))
def test_blocks_round_trip_through_every_encoding(items: list[Entry], level: int, encoding: PayloadEncoding,
                                                  record_time: int) -> None:
    body = _body(items)
    plaintext = PayloadEncoder(encoding, level).encode(body, record_time)
    decoder = PayloadDecoder(encoding.format_version)
    assert decoder.decode(plaintext, time_ns=record_time) == body
    assert decode_entries(decoder.decode(plaintext, time_ns=record_time)) == items


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_bytes_that_are_not_entries_still_round_trip(body: bytes) -> None:
    plaintext = PayloadEncoder(PayloadEncoding.ZSTD).encode(body)
    assert PayloadDecoder(2).decode(plaintext) == body


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=64))
def test_float_words_are_narrowed_only_when_exact_and_widen_back(patterns: list[int]) -> None:
    words = np.array(patterns, dtype=np.uint64)
    exact = pc._float32_exact(words)
    assert np.array_equal(pc._widen(pc._narrow(words[exact])), words[exact])
    as_float = words.view(np.float64)
    assert not exact[np.isnan(as_float)].any()  # NaN payloads are never touched


@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=64))
def test_every_float32_number_except_subnormals_is_narrowed(values: list[float]) -> None:
    narrow = np.array(values, dtype=np.float32)
    normal_or_zero = (narrow == 0) | ~np.isfinite(narrow) | (np.abs(narrow) >= np.finfo(np.float32).tiny)
    words = narrow.astype(np.float64).view(np.uint64)
    assert np.array_equal(pc._float32_exact(words), normal_or_zero)
    assert np.array_equal(pc._narrow(words[normal_or_zero]), narrow[normal_or_zero].view(np.uint32).astype(np.int64))


# --------------------------------------------------------------------------- hostile input


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([1, 2]))
def test_garbage_blocks_give_a_format_error_never_a_crash(data: bytes, version: int) -> None:
    try:
        PayloadDecoder(version).decode(data)
    except FormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_columnar_bodies_give_a_format_error_never_a_crash(data: bytes) -> None:
    try:
        decode_columns(data, SegmentDictionary((b"\x01\x00\x00\x01\x00\x01\x00\x00ab",)))
    except FormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(entries, min_size=1, max_size=6), st.data())
def test_damaged_columnar_bodies_give_a_format_error_or_other_bytes(items: list[Entry], data: st.DataObject) -> None:
    encoded = bytearray(_columns(_body(items)).body)
    how = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if how == "flip":
        encoded[data.draw(st.integers(0, len(encoded) - 1))] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
    else:
        encoded += data.draw(st.binary(min_size=1, max_size=9))
    try:
        decode_columns(bytes(encoded), None)
    except FormatError:
        pass


def test_malformed_columnar_bodies_are_named() -> None:
    key = b"\x01\x00\x00\x01\x00\x00\x00\x00a"
    bad_key = b"\x01\x00\x00\x02\x00\x00\x00\x00a"  # says 2 topic bytes, holds 1
    one_group = bytes([1, 0, len(key)]) + key + bytes([3, 0])  # one group: this identity, 3 data bytes, no link
    with pytest.raises(FormatError, match="claims 200 groups"):
        decode_columns(bytes([200, 1]), None)
    with pytest.raises(FormatError, match="refers to entry identity 4, only 0 known"):
        decode_columns(bytes([1, 5, 0]), None)
    with pytest.raises(FormatError, match="identity lengths do not add up"):
        decode_columns(bytes([1, 0, len(bad_key)]) + bad_key + b"\x00\x00", None)
    with pytest.raises(FormatError, match="not a valid varint"):
        decode_columns(b"\xff" * 12, None)
    with pytest.raises(FormatError, match="puts an entry in group 3, only 1 defined"):
        decode_columns(one_group + bytes([1, 3, 0]) + b"abc", None)
    with pytest.raises(FormatError, match="group without entries"):
        decode_columns(bytes([2]) + one_group[1:] + bytes([1, 3, 0]) + bytes([1, 0, 0]) + b"abc", None)
    with pytest.raises(FormatError, match="links group 0 to group 0"):
        decode_columns(one_group[:-1] + bytes([1]) + bytes([1, 0, 0]) + b"abc", None)
    with pytest.raises(FormatError, match="links group 1 to group 0, which is not an earlier group of the same"):
        decode_columns(bytes([2]) + one_group[1:] + bytes([1, 2, 1]) + bytes([2, 0, 1, 0, 0]) + b"abcde", None)
    with pytest.raises(FormatError, match="trailing bytes"):
        decode_columns(one_group + bytes([1, 0, 0]) + b"abc" + b"!", None)
    with pytest.raises(FormatError, match="byte columns needs 3 bytes"):
        decode_columns(one_group + bytes([1, 0, 0]) + b"ab", None)
    assert decode_columns(one_group + bytes([1, 0, 0]) + b"abc", None, base_time_ns=7) == encode_entry(
        Entry(7, "a", "", b"abc", tier=Tier.EVENT))
    # a one-byte reference to a large identity repeated many times must not decode to gigabytes
    big = b"\x01\x00" + struct.pack(">HHH", 60000, 0, 0) + b"t" * 60000
    count = 5000
    body = bytearray([1, 0])  # one group, defining its identity ...
    pc._put_varint(body, len(big))
    body += big + bytes([0, 0])  # ... with empty data, no link
    pc._put_varint(body, count)
    body += bytes(count) * 2  # every entry in that group, all at the same time
    with pytest.raises(FormatError, match="more than"):
        decode_columns(bytes(body), None, max_size=1 << 20)


def test_codec_bytes_are_checked_against_the_format_version() -> None:
    zstd_block = PayloadEncoder(PayloadEncoding.ZSTD).encode(_body([Entry(1, "a", "b", b"x" * 50)] * 3))
    assert zstd_block[0] == Codec.ZSTD_COLUMNS
    with pytest.raises(FormatError, match="codec 3, unknown in format version 1"):
        PayloadDecoder(1).decode(zstd_block)
    zlib_block = PayloadEncoder(PayloadEncoding.ZLIB).encode(b"y" * 100)
    assert zlib_block[0] == Codec.ZLIB
    with pytest.raises(FormatError, match="codec 1, unknown in format version 2"):
        PayloadDecoder(2).decode(zlib_block)
    with pytest.raises(FormatError, match="decodes to 1000 bytes, more than 100"):
        PayloadDecoder(2).decode(PayloadEncoder(PayloadEncoding.ZSTD).encode(b"z" * 1000), max_size=100)
    with pytest.raises(FormatError, match="empty DATA block"):
        PayloadDecoder(2).decode(b"")


# --------------------------------------------------------------------------- the segment dictionary


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, max_size=8), st.binary(max_size=200))
def test_dictionary_encoding_round_trips(items: list[Entry], zdict: bytes) -> None:
    dictionary = SegmentDictionary(_dictionary_from(items).keys, zdict)
    assert SegmentDictionary.decode(dictionary.encode()) == dictionary


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_dictionaries_give_a_format_error_never_a_crash(data: bytes) -> None:
    try:
        SegmentDictionary.decode(data)
    except FormatError:
        pass


def test_sealed_dictionary_opens_only_with_its_key_and_segment() -> None:
    dictionary = SegmentDictionary((b"\x01\x00\x00\x01\x00\x00\x00\x00a",), b"")
    aead, segment_id = AESGCM(os.urandom(32)), os.urandom(16)
    text = seal_dictionary(aead, segment_id, dictionary)
    assert open_dictionary(aead, segment_id, text) == dictionary
    with pytest.raises(FormatError, match="does not authenticate"):
        open_dictionary(AESGCM(os.urandom(32)), segment_id, text)
    with pytest.raises(FormatError, match="does not authenticate"):
        open_dictionary(aead, os.urandom(16), text)  # moved to another segment
    flipped = ("B" if text[5] != "B" else "C").join((text[:5], text[6:]))
    with pytest.raises(FormatError):
        open_dictionary(aead, segment_id, flipped)
    with pytest.raises(FormatError, match="not base64"):
        open_dictionary(aead, segment_id, "not base64!")


def _g1_like_blocks(seconds: int, seed: int = 1) -> list[bytes]:
    """100 ms blocks of a walking robot at long-term rates: two 20 Hz velocity commands (full doubles)
    and a 29-joint state once a second (float32 values widened, as a G1 reports them)."""
    rng = np.random.default_rng(seed)
    blocks = []
    for tick in range(seconds * 10):
        t = tick / 10
        parts = []
        for half in (0.0, 0.05):
            twist = b"\x00\x01\x00\x00" + struct.pack("<6d", 0.4 + 0.3 * math.sin((t + half) / 7), 0, 0, 0, 0,
                                                      0.3 * math.sin((t + half) / 5))
            for topic in ("guard/in/cmd_vel", "hw/cmd_vel"):
                parts.append(Entry(1_780_000_000 * 10**9 + int((t + half) * 1e9) + int(rng.integers(0, 400_000)), topic,
                                   "geometry_msgs/msg/Twist", twist, "G-440304-0007", Tier.EVENT))
        if tick % 10 == 0:
            q = (np.sin(t * 5.6 + np.arange(JOINTS)) * 0.4 + rng.normal(0, 2e-4, JOINTS)).astype(np.float32)
            dq = (np.cos(t * 5.6 + np.arange(JOINTS)) * 2.2 + rng.normal(0, 0.015, JOINTS)).astype(np.float32)
            tau = rng.normal(0, 8, JOINTS).astype(np.float32)
            state = (b"\x00\x01\x00\x00" + struct.pack("<iI", int(t), int(t % 1 * 1e9))
                     + np.concatenate([q, dq, tau]).astype("<f8").tobytes())
            parts.append(Entry(1_780_000_000 * 10**9 + int(t * 1e9), "joint_states", "sensor_msgs/msg/JointState",
                               state, "G-440304-0007", Tier.LONG_TERM))
        blocks.append(_body(parts))
    return blocks


def test_a_trained_segment_dictionary_makes_realistic_blocks_much_smaller_than_zlib() -> None:
    blocks = _g1_like_blocks(300)
    first, second = blocks[:1500], blocks[1500:]
    cold = PayloadEncoder(PayloadEncoding.ZSTD)
    for block in first:
        cold.encode(block)
    dictionary = cold.next_dictionary()
    assert dictionary is not None and dictionary.zstd_dictionary and len(dictionary.keys) == 3
    warm = PayloadEncoder(PayloadEncoding.ZSTD, 1, dictionary)
    decoder = PayloadDecoder(2, dictionary)
    zlib_bytes = sum(len(PayloadEncoder(PayloadEncoding.ZLIB).encode(b)) for b in second)
    encoded = [warm.encode(b) for b in second]
    assert [decoder.decode(e) for e in encoded] == second
    assert sum(map(len, encoded)) < 0.6 * zlib_bytes
    with pytest.raises(FormatError):
        PayloadDecoder(2).decode(encoded[0])  # the blocks need their segment's dictionary


def test_too_little_material_builds_no_dictionary() -> None:
    builder = DictionaryBuilder()
    builder.observe(_columns(_g1_like_blocks(1)[0]))
    assert not builder.ready and builder.build() is None


# --------------------------------------------------------------------------- headers


def _header(version: int, dictionary: str = "") -> SegmentHeader:
    return SegmentHeader("440304-RB-2026-000123-8", "ab" * 32, "00" * 16, "11" * 16, 0, 1, "", "00" * 32, 5, (),
                         version=version, dictionary=dictionary)


def test_header_names_its_compression_and_carries_the_dictionary_from_version_2() -> None:
    v1, v2 = _header(1).to_json(), _header(2, "QUJD").to_json()
    assert v1["compression"] == "zlib" and "dictionary" not in v1
    assert v2["compression"] == "zstd" and v2["dictionary"] == "QUJD"
    assert SegmentHeader.decode(_header(2, "QUJD").encode(), "h") == _header(2, "QUJD")
    assert SegmentHeader.decode(_header(1).encode(), "h") == _header(1)
    for broken in ({**v2, "compression": "zlib"}, {**v1, "compression": "zstd"}, {**v2, "dictionary": "*"},
                   {k: v for k, v in v2.items() if k != "dictionary"}):
        with pytest.raises(FormatError):
            SegmentHeader.decode(canonical_json(broken), "h")


def test_prefix_version_must_match_the_signed_header() -> None:
    body = _header(2).encode()
    assert parse_segment_prefix(encode_segment_prefix(body, bytes(64), 2), "s").header.version == 2
    with pytest.raises(FormatError, match="prefix says format version 1, its signed header 2"):
        parse_segment_prefix(encode_segment_prefix(body, bytes(64), 1), "s")


# --------------------------------------------------------------------------- whole logs


def _append_g1_like(writer: LogWriter, blocks: list[bytes], sent: list[Entry]) -> None:
    for block in blocks:
        for item in decode_entries(block):
            writer.append(item)
            sent.append(item)
        writer.flush(sync=False)
    writer.flush()


def _exported(directory: Path, keys) -> tuple[list[Entry], ExportOutcome]:  # type: ignore[no-untyped-def]
    outcome = ExportOutcome()
    return [e.entry for e in iter_entries(directory, keys.auditor, make_filter(None, None, None), outcome)], outcome


@pytest.mark.clause("3.1b", "7.3")
def test_log_seeds_a_dictionary_segment_that_verifies_without_a_key_and_exports_exactly(tmp_path: Path) -> None:
    keys = make_keys()
    directory = tmp_path / "log"
    sent: list[Entry] = []
    with LogWriter(directory, keys.writer_keys()) as writer:
        _append_g1_like(writer, _g1_like_blocks(150), sent)
    files = segments(directory)
    headers = [parse_segment_prefix(p.read_bytes(), p.name).header for p in files]
    assert [h.version for h in headers] == [2, 2, 2]
    # the first segment after a start has no dictionary; it seeds one as soon as it has material, and
    # the second one (its blocks coded with a codebook) seeds the steady-state dictionary
    assert headers[0].dictionary == "" and headers[1].dictionary and headers[2].dictionary
    report = verify_log(directory)  # no decryption key
    assert report.clean, report.render()
    exported, outcome = _exported(directory, keys)
    assert exported == sent and not outcome.problems


@pytest.mark.clause("6.2e")
def test_version_1_segments_stay_readable_next_to_version_2(tmp_path: Path) -> None:
    """An upgraded robot continues its old log: zlib segments (version 1), then zstd ones (version 2)."""
    keys = make_keys()
    directory = tmp_path / "log"
    blocks = _g1_like_blocks(60)
    sent: list[Entry] = []
    with LogWriter(directory, keys.writer_keys(), WriterPolicy(payload_encoding="zlib")) as old:
        _append_g1_like(old, blocks[:300], sent)
    with LogWriter(directory, keys.writer_keys()) as new:
        _append_g1_like(new, blocks[300:], sent)
    versions = [parse_segment_prefix(p.read_bytes(), p.name).header.version for p in segments(directory)]
    assert versions == [1, 2]
    report = verify_log(directory)
    assert report.clean, report.render()
    exported, outcome = _exported(directory, keys)
    assert exported == sent and not outcome.problems


@pytest.mark.clause("3.1b")
def test_power_cut_in_a_dictionary_segment_keeps_everything_synced_readable(tmp_path: Path) -> None:
    keys = make_keys()
    directory = tmp_path / "log"
    writer = LogWriter(directory, keys.writer_keys())
    writer.open()
    sent: list[Entry] = []
    blocks = _g1_like_blocks(150)
    _append_g1_like(writer, blocks[:-1], sent)
    path = writer.segment_path
    assert path is not None and parse_segment_prefix(path.read_bytes(), path.name).header.dictionary
    synced_size, synced = path.stat().st_size, len(sent)
    for item in decode_entries(blocks[-1]):
        writer.append(item)
    writer.flush(sync=False)
    writer._segment.release()  # type: ignore[union-attr]  # simulate the process vanishing
    writer._release_lock()
    data = path.read_bytes()
    cut = random.Random(3).randint(synced_size + 1, len(data) - 1)
    path.write_bytes(data[:cut])
    recovered = LogWriter(directory, keys.writer_keys())
    outcome = recovered.open()
    assert outcome.note is not None and outcome.note.kind == "TORN_TAIL"
    recovered.close()
    exported, problems = _exported(directory, keys)
    assert len(exported) >= synced and exported == sent[: len(exported)] and not problems.problems
    assert not verify_log(directory).errors


# --------------------------------------------------------------------------- writer tuning (issue 7 item 11)


@st.composite
def float_columns(draw: st.DrawFn) -> list[bytes]:
    """Rows of one stream: a ragged CDR-like head, then the same number of float64 columns in each row
    (none, some narrowable, some not: NaN payloads, infinities, -0.0, subnormals, full doubles)."""
    head = draw(st.integers(0, 13))
    columns = draw(st.integers(0, 9))
    rows = draw(st.integers(1, 12))
    column_kind = [draw(st.sampled_from(["float32", "double", "mixed"])) for _ in range(columns)]
    out = []
    for _ in range(rows):
        values = [draw(float32_values if kind == "float32" else doubles if kind == "mixed"
                       else st.one_of(st.floats(), special_doubles, nan_patterns)) for kind in column_kind]
        out.append(draw(st.binary(min_size=head, max_size=head)) + struct.pack(f"<{columns}d", *values))
    return out


def _tuned_dictionary(monkeypatch: pytest.MonkeyPatch, level: int, size: int) -> SegmentDictionary:
    monkeypatch.setattr(pc, "ZSTD_LEVEL", level)
    monkeypatch.setattr(pc, "ZSTD_DICTIONARY_BYTES", size)
    cold = PayloadEncoder(PayloadEncoding.ZSTD)
    for block in _g1_like_blocks(60):
        cold.encode(block)
    dictionary = cold.next_dictionary()
    assert dictionary is not None and 0 < len(dictionary.zstd_dictionary) <= size
    return dictionary


@pytest.fixture(scope="module")
def tuned_dictionaries() -> dict[str, SegmentDictionary]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {"previous": _tuned_dictionary(monkeypatch, pc.PREVIOUS_ZSTD_LEVEL, pc.PREVIOUS_ZSTD_DICTIONARY_BYTES),
                "current": _tuned_dictionary(monkeypatch, pc.ZSTD_LEVEL, pc.ZSTD_DICTIONARY_BYTES)}


@settings(max_examples=150, deadline=None)
@given(float_columns(), st.sampled_from(["previous", "current"]), st.booleans(), st.integers(0, 2**64 - 1 - 12))
def test_float_columns_round_trip_exactly_under_both_tunings(
        tuned_dictionaries: dict[str, SegmentDictionary], rows: list[bytes], tuning: str, forwarded: bool,
        record_time: int) -> None:
    """Every float64 bit pattern comes back: narrowed columns (float32 delta), the others (byte XOR),
    with or without a forward coded against them, at either writer tuning, with its dictionary."""
    dictionary = tuned_dictionaries[tuning]
    items = []   # entry times record_time + i: at most 12 rows, so every time fits the format's 64 bits
    for i, row in enumerate(rows):
        items.append(Entry(record_time + i, "joint_states", "sensor_msgs/msg/JointState", row, "G-440304-0007",
                           Tier.FULL_RATE))
        if forwarded:
            items.append(Entry(record_time + i, "hw/joint_states", "sensor_msgs/msg/JointState", row))
    body = _body(items)
    level = pc.PREVIOUS_ZSTD_LEVEL if tuning == "previous" else pc.ZSTD_LEVEL
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(pc, "ZSTD_LEVEL", level)
        plaintext = PayloadEncoder(PayloadEncoding.ZSTD, 1, dictionary).encode(body, record_time)
    assert plaintext[0] in ((Codec.ZSTD_COLUMNS, Codec.NONE) if len(items) > 1 else (Codec.ZSTD, Codec.NONE))
    assert PayloadDecoder(2, dictionary).decode(plaintext, time_ns=record_time) == body  # at the current level
    assert decode_entries(body) == items


def test_an_empty_float_region_and_an_empty_block_round_trip() -> None:
    for data in (b"", b"\x00\x01\x00\x00", bytes(11)):
        body = _body([Entry(1, "imu", "sensor_msgs/msg/Imu", data), Entry(2, "imu", "sensor_msgs/msg/Imu", data)])
        assert decode_columns(_columns(body, None, 0).body, None) == body
    assert decode_columns(_columns(b"", None, 0).body, None) == b""


def test_the_current_tuning_writes_fewer_bytes_than_the_previous_one(
        tuned_dictionaries: dict[str, SegmentDictionary]) -> None:
    blocks = _g1_like_blocks(60)[-300:]
    sizes = {}
    for tuning, level in (("previous", pc.PREVIOUS_ZSTD_LEVEL), ("current", pc.ZSTD_LEVEL)):
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(pc, "ZSTD_LEVEL", level)
            encoder = PayloadEncoder(PayloadEncoding.ZSTD, 1, tuned_dictionaries[tuning])
            sizes[tuning] = sum(len(encoder.encode(b)) for b in blocks)
    assert sizes["current"] < sizes["previous"]


@pytest.mark.clause("6.2e")
def test_segments_written_with_the_previous_tuning_still_read_and_verify(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A log written by the first version 2 writer (zstd level 3, 32 KiB dictionaries), continued by the
    current one: it verifies without a key and exports exactly, old segments and new."""
    keys = make_keys()
    directory = tmp_path / "log"
    blocks = _g1_like_blocks(180)
    sent: list[Entry] = []
    monkeypatch.setattr(pc, "ZSTD_LEVEL", pc.PREVIOUS_ZSTD_LEVEL)
    monkeypatch.setattr(pc, "ZSTD_DICTIONARY_BYTES", pc.PREVIOUS_ZSTD_DICTIONARY_BYTES)
    with LogWriter(directory, keys.writer_keys()) as old:
        _append_g1_like(old, blocks[:1600], sent)
    old_segments = len(segments(directory))
    assert old_segments >= 3  # one with a steady-state dictionary of the previous size
    monkeypatch.undo()
    assert (pc.ZSTD_LEVEL, pc.ZSTD_DICTIONARY_BYTES) != (pc.PREVIOUS_ZSTD_LEVEL, pc.PREVIOUS_ZSTD_DICTIONARY_BYTES)
    with LogWriter(directory, keys.writer_keys()) as new:
        _append_g1_like(new, blocks[1600:], sent)
    assert len(segments(directory)) > old_segments
    report = verify_log(directory)
    assert report.clean, report.render()
    exported, outcome = _exported(directory, keys)
    assert exported == sent and not outcome.problems
