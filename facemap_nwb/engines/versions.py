"""Versions of the engines, read from the installed distributions (never from a package root)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["package_version"]


def package_version(distribution: str) -> str:
    """The installed version of ``distribution`` (e.g. ``"facemap-nwb"``), or ``""`` when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""
