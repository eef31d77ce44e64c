"""Helpers shared by the subcommands."""

from __future__ import annotations

import sys


def printable(text: str, stream=None) -> str:
    """``text`` that ``stream`` (stdout) can always write, even with a strict encoding: the bytes of a file name
    that is not UTF-8 (decoded by Python with surrogateescape) and characters the encoding lacks become
    backslash escapes instead of aborting the listing with UnicodeEncodeError."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "utf-8"
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte (e.g. from JSON "\ud800")
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.encode(encoding, "backslashreplace").decode(encoding, "replace")
