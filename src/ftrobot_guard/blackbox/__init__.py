"""Black box: encrypted, hash-chained, signed, crash-safe local logs (docs/design.md, § Black box).

The format is specified in ``docs/blackbox-format.md`` (format version 1). Modules:

- :mod:`.record_format`    byte layout of segment headers, records, entries and checkpoints
- :mod:`.key_wrap`         per-segment data keys wrapped for X25519 recipients
- :mod:`.segment_writer`   sealing records into one segment file
- :mod:`.log_writer`       the append-only log: segments, checkpoints, fsync policy, rotation
- :mod:`.segment_reader`   parsing segment files without a key; decrypting with one
- :mod:`.verification`     integrity, order and completeness checks (no decryption key)
- :mod:`.witnessed_heads`  checkpoints witnessed by the department (``--heads`` file)
- :mod:`.recovery`         finding the last valid record after a crash
- :mod:`.retention`        retention period, disk budget, signed deletion manifests
- :mod:`.export`           decrypting entries to JSON Lines
- :mod:`.statistics`       ``log stat`` figures
- :mod:`.decommission`     export archive + crypto-shred
- :mod:`.recording_policy` which topics go to which tier (event / decimated / full-rate ring)

Nothing here imports rclpy; message decoding in :mod:`.export` imports it lazily.
"""

from ftrobot_guard.blackbox.errors import BlackBoxError

__all__ = ["BlackBoxError"]
