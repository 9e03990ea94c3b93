"""Record format, key wrapping, checkpoints and the heads file: round trips and hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.blackbox.errors import FormatError, KeyMismatchError, UnsupportedVersionError
from ftrobot_guard.blackbox.key_wrap import new_data_key, unwrap_data_key, wrap_data_key
from ftrobot_guard.blackbox.payload_codec import PayloadDecoder, PayloadEncoder, PayloadEncoding
from ftrobot_guard.blackbox.record_format import (
    Checkpoint,
    Entry,
    EntryKind,
    ParsedRecord,
    RecordProblem,
    RecordType,
    SegmentHeader,
    Tier,
    checkpoint_signed_bytes,
    decode_entries,
    encode_entry,
    encode_record,
    find_next_record,
    frame_header_len,
    parse_record_at,
    parse_segment_prefix,
    peek_frame_header,
    record_nonce,
)
from ftrobot_guard.blackbox.witnessed_heads import (
    WitnessedHead,
    WitnessedHeadError,
    WitnessedHeadStore,
    export_heads,
    load_witnessed_heads,
    parse_heads_document,
)

text = st.text(max_size=40)
entries = st.builds(
    Entry,
    time_ns=st.integers(0, 2**64 - 1),
    topic=text,
    type_name=text,
    data=st.binary(max_size=500),
    guardian=text,
    tier=st.sampled_from(list(Tier)),
    kind=st.sampled_from(list(EntryKind)),
)


@given(st.lists(entries, max_size=8), st.integers(0, 9), st.sampled_from(list(PayloadEncoding)))
def test_entries_round_trip_through_blocks(items: list[Entry], level: int, encoding: PayloadEncoding) -> None:
    body = b"".join(encode_entry(e) for e in items)
    plaintext = PayloadEncoder(encoding, level).encode(body)
    assert decode_entries(PayloadDecoder(encoding.format_version).decode(plaintext)) == items


@given(st.binary(max_size=300))
def test_decode_entries_never_crashes_on_garbage(data: bytes) -> None:
    try:
        decode_entries(data)
    except FormatError:
        pass


@given(st.binary(max_size=300), st.sampled_from([1, 2]))
def test_decode_block_never_crashes_on_garbage(data: bytes, version: int) -> None:
    try:
        PayloadDecoder(version).decode(data)
    except FormatError:
        pass


@given(st.sampled_from(list(RecordType)), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.binary(min_size=12, max_size=12), st.binary(max_size=200))
def test_record_round_trip(rtype: RecordType, seq: int, time_ns: int, nonce: bytes, payload: bytes) -> None:
    raw = encode_record(rtype, seq, time_ns, nonce, payload)
    parsed = parse_record_at(b"junk" + raw, 4)
    assert isinstance(parsed, ParsedRecord)
    assert (parsed.record_type, parsed.sequence, parsed.time_ns, parsed.nonce, parsed.payload) == (
        rtype, seq, time_ns, nonce, payload)
    assert parse_record_at(raw[:-1], 0) is RecordProblem.INCOMPLETE


@given(st.sampled_from(list(RecordType)), st.integers(1, 2**64 - 2), st.integers(0, 2**64 - 1),
       st.binary(max_size=200), st.binary(max_size=40))
def test_compact_record_round_trip(rtype: RecordType, seq: int, time_ns: int, payload: bytes, junk: bytes) -> None:
    """Version 2 frames leave the nonce out: it is the counter nonce of the sequence (DATA) or zeros."""
    nonce = record_nonce(rtype, seq)
    raw = encode_record(rtype, seq, time_ns, nonce, payload, compact=True)
    assert len(raw) == len(encode_record(rtype, seq, time_ns, nonce, payload)) - 12
    parsed = parse_record_at(junk + raw, len(junk))
    assert isinstance(parsed, ParsedRecord)
    assert (parsed.record_type, parsed.sequence, parsed.time_ns, parsed.nonce, parsed.payload) == (
        rtype, seq, time_ns, nonce, payload)
    assert parsed.header == raw[:22] and frame_header_len(parsed.flags) == 22
    assert nonce == (bytes(4) + seq.to_bytes(8, "big") if rtype == RecordType.DATA else bytes(12))
    peeked = peek_frame_header(raw[:30], 0)
    assert peeked is not None and (peeked.length, peeked.sequence) == (len(raw), seq)
    found = find_next_record(b"\xff" * 5 + junk + raw, 1, seq, seq + 1)
    assert found is not None and found.raw == raw
    assert parse_record_at(raw[:-1], 0) is RecordProblem.INCOMPLETE
    assert parse_record_at(raw[:-4] + bytes(4 * [raw[-1] ^ 1]), 0) is RecordProblem.BAD_CRC


def test_compact_frame_refuses_a_nonce_it_does_not_imply() -> None:
    with pytest.raises(ValueError, match="compact frame"):
        encode_record(RecordType.DATA, 5, 0, record_nonce(RecordType.DATA, 6), b"x", compact=True)


@given(st.integers(0, 21), st.binary(min_size=40, max_size=40))
def test_compact_frame_with_an_impossible_length_is_refused(body_len: int, rest: bytes) -> None:
    raw = body_len.to_bytes(4, "big") + bytes((RecordType.DATA, 1)) + rest
    assert parse_record_at(raw, 0) is RecordProblem.BAD_LENGTH
    assert peek_frame_header(raw, 0) is None


@given(st.binary(max_size=200), st.integers(0, 199))
def test_parse_record_never_crashes(data: bytes, offset: int) -> None:
    result = parse_record_at(data, min(offset, len(data)))
    assert isinstance(result, (ParsedRecord, RecordProblem))


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_segment_prefix_parser_rejects_garbage_cleanly(data: bytes) -> None:
    try:
        parse_segment_prefix(data, "f")
    except FormatError:
        pass


@pytest.mark.clause("6.2e")
def test_unknown_version_is_named() -> None:
    with pytest.raises(UnsupportedVersionError, match="version 9"):
        parse_segment_prefix(b"\x89FTBB\r\n\x1a\x00\x09\x00\x00\x00\x02{}" + bytes(64), "seg")


@pytest.mark.clause("7.3")
def test_key_wrap_round_trip_and_wrong_key() -> None:
    recipient = x25519.X25519PrivateKey.generate()
    data_key = new_data_key()
    sid = os.urandom(16)
    wrap = wrap_data_key(data_key, recipient.public_key(), sid)
    assert unwrap_data_key(wrap, recipient, sid) == data_key
    with pytest.raises(KeyMismatchError):
        unwrap_data_key(wrap, x25519.X25519PrivateKey.generate(), sid)
    with pytest.raises(KeyMismatchError):
        unwrap_data_key(wrap, recipient, os.urandom(16))  # wrap moved to another segment


@pytest.mark.clause("3.1b")
def test_checkpoint_sign_encode_verify() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cp = Checkpoint("440304-RB-2026-000123-8", "ab" * 16, 42, os.urandom(32), 123).signed(key)
    decoded = Checkpoint.decode(cp.encode(), "cp")
    assert decoded == cp and decoded.signature_valid(key.public_key())
    assert not Checkpoint("440304-RB-2026-000123-8", "ab" * 16, 43, cp.chain_head, 123, cp.signature).signature_valid(
        key.public_key())
    assert cp.signed_bytes() == checkpoint_signed_bytes(cp.robot_id, cp.segment_id, 42, cp.chain_head, 123)


def test_header_rejects_missing_fields() -> None:
    with pytest.raises(FormatError, match="segment_id"):
        SegmentHeader.decode(json.dumps({"format": "ftrobot-blackbox-segment", "version": 1, "cipher": "AES-256-GCM",
                                         "compression": "zlib", "nonce": "counter"}).encode(), "h")


def _head(seq: int = 5, robot: str = "440304-RB-2026-000123-8") -> WitnessedHead:
    return WitnessedHead(robot, "cd" * 16, seq, "ef" * 32, witnessed_at_ns=7)


def test_heads_store_export_and_load(tmp_path: Path) -> None:
    store_path = tmp_path / "heads.jsonl"
    with WitnessedHeadStore(store_path) as store:  # written (one fsync) when the batch ends
        assert store.witness(_head(5)) and store.witness(_head(6, "440304-RB-2026-000124-6"))
        assert not store.witness(_head(5))  # duplicate
        assert not store.witness(WitnessedHead("440304-RB-2026-000123-8", "nothex", 1, "00"))  # refused, no raise
        assert "segment_id" in store.last_refusal
    reopened = WitnessedHeadStore(store_path)
    assert len(reopened) == 2
    text = export_heads(store_path, "440304-RB-2026-000123-8")
    out = tmp_path / "heads.json"
    out.write_text(text)
    assert load_witnessed_heads(out) == [_head(5)]
    assert len(load_witnessed_heads(store_path)) == 2
    with pytest.raises(WitnessedHeadError, match="no witnessed heads"):
        export_heads(store_path, "440304-RB-2026-000125-4")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                    max_leaves=10))
def test_heads_document_parser_refuses_garbage_with_clear_error(document: object) -> None:
    try:
        parse_heads_document(document, "heads.json")
    except WitnessedHeadError as exc:
        assert str(exc).startswith("heads.json")
