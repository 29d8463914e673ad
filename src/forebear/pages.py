"""The paths of the web UI's pages, which `forebear ui` and a forebear server serve: the
web UI links its pages with them, and the API names a run's or a version's page on a
server (W&B's ``run.url``, ``artifact.url``) with the same."""

from __future__ import annotations

import urllib.parse


def quoted(text: str) -> str:
    """One path segment (or query value): every character but letters, digits and
    ``_.-~`` escaped."""
    return urllib.parse.quote(text, safe="")


def version_page(project: str, name: str, version: str) -> str:
    return f"/artifacts/{quoted(project)}/{quoted(name)}/{quoted(version)}"


def artifact_page(project: str, name: str) -> str:
    return f"/artifacts/{quoted(project)}/{quoted(name)}"


def run_page(run_id: str) -> str:
    return f"/runs/{quoted(run_id)}"


def runs_page(project: str) -> str:
    return f"/runs?project={quoted(project)}"


def on_server(store_url: str, path: str) -> str | None:
    """The page at ``path`` on the forebear server a store is reached through (its URL
    is the store's), or None for a store reached directly: no server serves its pages
    at a known address (`forebear ui` serves them where it is started)."""
    if not store_url.startswith(("http://", "https://")):
        return None
    return store_url.rstrip("/") + path
