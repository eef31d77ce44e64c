"""YAML values -> the types of the training config's annotations (``int``, ``float``, ``str``, ``bool``,
``None``, ``dict``, ``Any``, ``Literal``, unions, ``list[T]`` and srl-swe's ``tuple[str, ...]``), strictly: a
value that fits none of them is a mismatch, reported by the caller with :func:`describe`'s wording of what was
allowed. :func:`annotation` turns a type tree of :mod:`srl_swe.train.trl_schema` into such an annotation."""

from __future__ import annotations

import contextlib
import math
import types
from typing import Any, Literal, Union, get_args, get_origin

_NAMES = {"null": type(None), "bool": bool, "int": int, "float": float, "str": str, "dict": dict, "any": Any}


class Mismatch(Exception):
    """The value fits none of the annotation's types."""


def annotation(tree: Any) -> Any:
    """``"int"`` -> int, ``{"union": ["int", "null"]}`` -> ``int | None``, ``{"list": "str"}`` -> ``list[str]``."""
    if isinstance(tree, str):
        return _NAMES[tree]
    if "union" in tree:
        return Union[tuple(annotation(t) for t in tree["union"])]  # noqa: UP007 (built at run time)
    if "literal" in tree:
        return Literal[tuple(tree["literal"])]
    return list[annotation(tree["list"])]


def without_none(tp: Any) -> Any:
    """``int | None`` -> ``int``; other annotations as they are."""
    if get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
        return Union[tuple(a for a in get_args(tp) if a is not type(None))]  # noqa: UP007
    return tp


def widen(tp: Any, value: Any) -> Any:
    """``tp``, or ``tp | type(value)`` when ``value`` (a default) does not fit ``tp``."""
    try:
        coerce(tp, value)
        return tp
    except Mismatch:
        return Union[tp, type(value)]  # noqa: UP007


def coerce(tp: Any, v: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        for arg in args:
            with contextlib.suppress(Mismatch):
                return coerce(arg, v)
        raise Mismatch
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if tp is Any or (tp is dict and isinstance(v, dict)):
        return v
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
    if origin is list and isinstance(v, (list, tuple)):  # kept as a tuple: the config is immutable
        return tuple(coerce(args[0], i) for i in v)
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
    if origin is list:
        return f"a list of ({describe(args[0])})"
    return {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a mapping", Any: "any value"}.get(tp, str(tp))
