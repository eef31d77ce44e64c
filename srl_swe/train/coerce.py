"""YAML values -> the types of a dataclass's annotations (``int``, ``float``, ``str``, ``bool``, ``None``,
``Literal``, unions and ``tuple[str, ...]``), strictly: a value that fits none of them is a mismatch, reported
by the caller with :func:`describe`'s wording of what was allowed."""

from __future__ import annotations

import contextlib
import math
import types
from typing import Any, Literal, Union, get_args, get_origin


class Mismatch(Exception):
    """The value fits none of the annotation's types."""


def coerce(tp: Any, v: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        for arg in args:
            with contextlib.suppress(Mismatch):
                return coerce(arg, v)
        raise Mismatch
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if origin is Literal and any(v == a and type(v) is type(a) for a in args):
        return v
    if (tp is type(None) and v is None) or (tp is bool and isinstance(v, bool)) or (tp is str and isinstance(v, str)):
        return v
    if tp is int and number and (isinstance(v, int) or v.is_integer()):
        return int(v)
    if tp is float and (number or isinstance(v, str)):  # PyYAML reads 5e-7 (no dot) as a string
        with contextlib.suppress(ValueError):
            if math.isfinite(f := float(v)):
                return f
    if tp is str and number:
        return str(v)
    if origin is tuple:  # tuple[str, ...]: a list of strings, or one string; "none" means no entry
        items = [v] if isinstance(v, str) else v
        if isinstance(items, (list, tuple)) and all(isinstance(i, str) for i in items):
            return tuple(i for i in items if i != "none")
    raise Mismatch


def describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is tuple:
        return "a list of strings"
    return {type(None): "null", bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(tp, str(tp))
