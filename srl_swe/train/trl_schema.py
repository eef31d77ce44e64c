"""TRL's own training arguments (``GRPOConfig``, ``SFTConfig``) as data, read without importing TRL here.

The training config accepts every argument of the TRL class its mode trains with, checked before any model
loads, but ``srl_swe.train.config`` must stay free of torch / transformers / TRL (importing them takes
seconds). So the fields are read once in a child Python that imports TRL (:func:`_dump`): name, type, default
and choices (an enum such as transformers' ``SchedulerType``, or HfArgumentParser's ``choices`` metadata).
The result is cached in ``$SRL_SWE_CACHE/trl-schema/`` (default ``~/.cache/srl-swe``) under the installed
trl and transformers versions, which are read from the package metadata, so an upgrade re-reads the fields and
a new TRL option needs no edit in srl-swe. The first read costs one ``import trl`` (10 s or so), a cached one
a JSON read (milliseconds).

A type is a small JSON tree: ``"null" | "bool" | "int" | "float" | "str" | "dict" | "any" | {"list": T} |
{"union": [T, ...]} | {"literal": [v, ...]}``; ``"any"`` is a type YAML cannot spell (a class), left to TRL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srl_swe.errors import SRLError
from srl_swe.paths import cache_dir

CLASSES = ("GRPOConfig", "SFTConfig")
FORMAT = 1  # bump when the JSON written by _dump changes shape
TIMEOUT_S = 300
INSTALL = "pip install 'srl-swe[train]'"


class TrlSchemaError(SRLError):
    """TRL's training arguments could not be read (TRL missing, or the child Python failed)."""


@dataclass(frozen=True)
class TrlField:
    type: Any  # the JSON type tree above
    default: Any  # JSON-able; enums as their values, tuples as lists
    choices: tuple[Any, ...] | None = None
    default_is_repr: bool = False  # the real default is no JSON value (default holds its repr)


def schema_dir() -> Path:
    return cache_dir() / "trl-schema"


def versions() -> dict[str, str]:
    """The installed trl and transformers versions, from the package metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {name: version(name) for name in ("trl", "transformers")}
    except PackageNotFoundError as e:
        raise TrlSchemaError(f"the training config reads TRL's arguments, but {e.name} is not installed; "
                             f"{INSTALL}") from None


def trl_fields(schema: dict[str, Any] | None = None) -> dict[str, dict[str, TrlField]]:
    """``{"GRPOConfig": {name: TrlField}, "SFTConfig": {...}}`` of ``schema`` (default: the installed TRL's)."""
    raw = schema or load_schema()
    return {cls: {name: TrlField(f["type"], f["default"], tuple(f["choices"]) if f["choices"] else None,
                                 f["default_is_repr"]) for name, f in fields.items()}
            for cls, fields in raw["classes"].items()}


def merged(by_class: dict[str, dict[str, TrlField]]) -> tuple[dict[str, TrlField], set[str]]:
    """Every class's fields as one mapping (the first class's field where both have it), and the names whose
    default differs between the classes (or is no JSON value): those default to null in the training config,
    meaning "the mode's TRL class's default"."""
    out: dict[str, TrlField] = {}
    per_mode: set[str] = set()
    for fields in by_class.values():
        for name, f in fields.items():
            if f.default_is_repr:
                per_mode.add(name)
            if name not in out:
                out[name] = f
                continue
            if out[name].default != f.default:
                per_mode.add(name)
    return out, per_mode


def config_fields(by_class: dict[str, dict[str, TrlField]], defaults: dict[str, Any], hidden: Any, not_null: Any,
                  required: Any = ()) -> tuple[dict[str, TrlField], set[str], list[tuple[str, Any, Any]]]:
    """The TRL arguments the training config takes (all but ``hidden(name)``), those whose default is the
    mode's, and their ``(name, annotation, dataclasses.field)`` for ``make_dataclass``; ``defaults``
    overrides TRL's defaults, null is refused (as a wrong type) where ``not_null(name)``, and each of
    ``required`` must be an argument of this TRL."""
    import copy
    import dataclasses
    from typing import Optional

    from srl_swe.train.coerce import annotation, widen, without_none

    both, per_mode = merged(by_class)
    keys = {k: f for k, f in both.items() if not hidden(k)}
    if missing := sorted(set(required) - keys.keys()):
        raise TrlSchemaError(f"srl-swe's training config sets {', '.join(missing)}, which this TRL does not have; "
                             f"install the TRL this srl-swe is made for: {INSTALL}")
    per_mode = (per_mode & keys.keys()) - defaults.keys()
    specs = []
    for name, f in keys.items():
        default = defaults.get(name, None if name in per_mode else f.default)
        tp = without_none(annotation(f.type)) if not_null(name) else annotation(f.type)
        tp = widen(Optional[tp] if name in per_mode else tp, default)  # noqa: UP045
        if isinstance(default, dict):
            spec = dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d))
        else:
            spec = dataclasses.field(default=tuple(default) if isinstance(default, list) else default)
        specs.append((name, tp, spec))
    return keys, per_mode, specs


def load_schema() -> dict[str, Any]:
    """The installed TRL's fields as :func:`_dump` writes them, plus ``trl`` / ``transformers`` versions: from
    the cache, or read in a child Python and cached (see the module's docstring)."""
    vs = versions()
    path = schema_dir() / f"trl-{vs['trl']}_transformers-{vs['transformers']}_v{FORMAT}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("format") == FORMAT and set(cached.get("classes", ())) == set(CLASSES):
            return cached
    except (OSError, ValueError, AttributeError):
        pass  # not cached yet (or a broken file): read it again
    schema = _extract()
    schema.update(vs)
    try:  # atomic: a concurrent run reads the old file or the new one, never half of one
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(schema), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        import warnings

        warnings.warn(f"cannot cache TRL's arguments in {path.parent} ({e}); every run will read them again "
                      f"(10 s or so); set SRL_SWE_CACHE to a writable folder", stacklevel=2)
    return schema


def _extract() -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from srl_swe.train.trl_schema import _dump; _dump()"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TrlSchemaError(f"reading TRL's training arguments (`python -c 'import trl'`) took over {TIMEOUT_S} s; "
                             "check that `import trl` works in this environment") from None
    except OSError as e:
        raise TrlSchemaError(f"cannot start {sys.executable} to read TRL's training arguments: {e}") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise TrlSchemaError(f"reading TRL's training arguments failed (`import trl` in {sys.executable}):\n{tail}\n"
                             f"reinstall with {INSTALL}")
    return json.loads(done.stdout)


# -- the child's side: imports TRL ----------------------------------------------------------------------------
def _type_tree(tp: Any, choices: list[Any]) -> Any:
    """``tp`` as a JSON type tree; the values of an enum met at the top (alone or in a union) go to ``choices``."""
    import enum
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        trees = []
        for arg in args:
            if (t := _type_tree(arg, choices)) not in trees:
                trees.append(t)
        return trees[0] if len(trees) == 1 else {"union": trees}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        choices.extend(m.value for m in tp)
        return "str"
    if origin is typing.Literal:
        return {"literal": list(args)}
    if origin in (list, tuple, set):
        return {"list": _type_tree(args[0], []) if args else "any"}
    if tp is dict or origin is dict:
        return "dict"
    names = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}
    return names.get(tp, "any")


def _json_default(value: Any) -> tuple[Any, bool]:
    import enum

    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (tuple, set)):
        value = list(value)
    try:
        json.dumps(value)
        return value, False
    except (TypeError, ValueError):
        return repr(value), True


def _dump() -> None:
    import dataclasses
    import typing

    import trl

    out: dict[str, Any] = {"format": FORMAT, "classes": {}}
    for cls_name in CLASSES:
        cls = getattr(trl, cls_name)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that does not resolve: read the rest as "any"
            hints = {}
        fields = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = None
            choices: list[Any] = []
            tree = _type_tree(hints.get(f.name, typing.Any), choices)
            choices += list(f.metadata.get("choices") or ())
            value, is_repr = _json_default(default)
            fields[f.name] = {"type": tree, "default": value, "choices": choices or None, "default_is_repr": is_repr}
        out["classes"][cls_name] = fields
    json.dump(out, sys.stdout)
