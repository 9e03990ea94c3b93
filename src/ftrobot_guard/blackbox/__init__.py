"""Black box: encrypted, hash-chained, signed, crash-safe local logs (docs/design.md, § Black box).

The format is specified in ``docs/blackbox-format.md`` (format versions 1 and 2). Modules:

- :mod:`.record_format`    byte layout of segment headers, records, entries and checkpoints
- :mod:`.key_wrap`         per-segment data keys wrapped for X25519 recipients
- :mod:`.payload_codec`    DATA block encoding inside the encryption: zlib (v1); zstd, columns, segment dictionary (v2)
- :mod:`.durable_files`    new files written whole and fsynced, directory fsyncs, OS errors in one line
- :mod:`.segment_writer`   sealing records into one segment file
- :mod:`.log_writer`       the append-only log: segments, checkpoints, fsync policy, rotation, flush thread
- :mod:`.segment_reader`   listing segments in log order, parsing them without a key, decrypting with one
- :mod:`.checkpoint_check` the rules a checkpoint record keeps (one set for recovery and verification)
- :mod:`.power_cut`        what a power cut can do to a segment, and whether damaged bytes fit it
- :mod:`.verification`     integrity, order and completeness checks (no decryption key)
- :mod:`.witnessed_heads`  checkpoints witnessed by the department (``--heads`` file)
- :mod:`.recovery`         setting aside a torn tail after a crash; leaving any other damage as it is
- :mod:`.retention`        retention period, disk budget, signed deletion manifests, the retention thread
- :mod:`.export`           decrypting entries to JSON Lines (messages decoded by a decoder the caller passes)
- :mod:`.statistics`       ``log stat`` figures
- :mod:`.decommission`     export archive + crypto-shred
- :mod:`.recording_policy` which topics go to which tier (event / decimated / full-rate ring)

Nothing here imports rclpy or ``ftrobot_guard.ros`` (tests/test_layering.py): ``ftrobot log export``
passes :class:`ftrobot_guard.ros.message_types.CdrMessageDecoder` to :mod:`.export`.
"""

from ftrobot_guard.blackbox.errors import BlackBoxError

__all__ = ["BlackBoxError"]
