"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from srl_swe.registry import Registry, UnknownComponentError


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


def registry_option(registry: Registry) -> Callable[[str], str]:
    """An argparse ``type`` for a component chosen from ``registry`` by name or dotted path: anything else is a
    usage error with the registry's message (the names, and the nearest one)."""

    def check(value: str) -> str:
        try:
            registry.path(value)
        except UnknownComponentError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    check.__name__ = registry.kind  # argparse names the type in its own messages
    return check
