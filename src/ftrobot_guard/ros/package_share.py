"""Where this package's launch/ and config/ files are installed."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "ftrobot_guard"


def package_share() -> Path:
    """The installed share directory: the ament index when it knows the package, else <prefix>/share."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            return Path(get_package_share_directory(PACKAGE))
        except (PackageNotFoundError, OSError):  # not indexed, or AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass
    return Path(sys.prefix) / "share" / PACKAGE
