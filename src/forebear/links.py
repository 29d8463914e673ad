"""How a download places stored bytes at their destination (light: the CLI imports it)."""

LINK_TYPES = ("auto", "reflink", "copy", "hardlink", "symlink")
"""How a download places a stored object at its destination:

- ``auto`` (default): a reflink where the filesystem can, else a copy. Always safe.
- ``reflink``: a copy-on-write clone; instant, safe; an error where unsupported.
- ``copy``: a plain copy.
- ``hardlink`` / ``symlink``: the destination *is* the stored object (read-only). Fast
  and free of disk space, but edit such a file only by replacing it, never in place.
"""
