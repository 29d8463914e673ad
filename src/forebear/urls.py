"""Passwords in URLs (``scheme://user:password@host/…``): found, so that they are never
written down. The password is everything from the user's colon to the URL's last ``@``, so
passwords holding ``/`` or ``@`` are found whole."""

from __future__ import annotations


def url_password(url: str | None) -> str | None:
    """The password of ``scheme://user:password@host/...``, or None."""
    if not url or "://" not in url:
        return None
    userinfo = url.split("://", 1)[1].rpartition("@")[0]
    _user, colon, password = userinfo.partition(":")
    return password if colon and password else None


def redact(url: str) -> str:
    """The URL with its password (if any) shown as ``***``, for messages and listings."""
    password = url_password(url)
    if password is None:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"
