"""How a download places stored bytes at their destination, and the copy-on-write clone
it tries first (light: the CLI imports it)."""

from __future__ import annotations

import os
import sys

LINK_TYPES = ("auto", "reflink", "copy", "hardlink", "symlink")
"""How a download places a stored object at its destination:

- ``auto`` (default): a reflink where the filesystem can, else a copy. Always safe.
- ``reflink``: a copy-on-write clone; instant, safe; an error where unsupported.
- ``copy``: a plain copy.
- ``hardlink`` / ``symlink``: the destination *is* the stored object (read-only). Fast
  and free of disk space, but edit such a file only by replacing it, never in place.
"""

_FICLONE = 0x40049409  # Linux ioctl: share all of a file's blocks (btrfs, XFS, bcachefs...)
_unsupported: set[tuple[int, int]] = set()  # (source, target) devices: not tried again


def may_reflink(src_device: int, dest_device: int) -> bool:
    """False where reflinks are not tried at all (outside Linux), or when one between these
    filesystems already failed: then no clone is attempted (a temporary file made and
    removed for nothing, per file)."""
    return sys.platform == "linux" and (src_device, dest_device) not in _unsupported


def reflink(src_fd: int, dst_fd: int) -> bool:
    """Make ``dst`` a copy-on-write clone of ``src``; False where the filesystem cannot."""
    devices = (os.fstat(src_fd).st_dev, os.fstat(dst_fd).st_dev)
    if not may_reflink(*devices):
        return False
    import fcntl

    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError:
        _unsupported.add(devices)
        return False
    return True
