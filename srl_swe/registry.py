"""One small mechanism for every pluggable component: a name -> ``"module.attr"`` map, imported lazily.

Modelled on mini-swe-agent's ``environments/__init__.py``: a registry maps short names to dotted paths, a
name that is not registered but looks like a dotted path (``my_pkg.my_module.MyRuntime``, or
``my_pkg.my_module:MyRuntime``) is imported as given, and anything else raises one error that lists the
options. Nothing is imported until a component is asked for, so a registry costs nothing at import time and
a new runtime, generator, policy or trajectory format is one file plus one line in its registry. CLI choices
come from :meth:`Registry.names`.

>>> r = Registry("metric", {"ratio": "difflib.SequenceMatcher"})
>>> r.get("ratio").__name__
'SequenceMatcher'
>>> try:
...     r.get("ratoi")
... except UnknownComponentError as e:
...     print(e)
unknown metric 'ratoi' (did you mean 'ratio'?); choose one of: ratio (or give a dotted path, module.Name)
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from srl_swe.errors import SRLError

T = TypeVar("T")


class UnknownComponentError(SRLError, ValueError):
    """A registry was asked for a name it does not have (and that is not an importable dotted path)."""


def import_path(path: str) -> Any:
    """``"pkg.module.Name"`` or ``"pkg.module:Name"`` -> the object (a nested ``Name.attr`` works after ``:``).
    ``"pkg.module"`` alone gives the module, for components that are modules (the trajectory formats)."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r} is not a dotted path (module.Name)")
    obj: Any = importlib.import_module(module_name)
    if not sep and not hasattr(obj, attr):
        # A package does not import its submodules: "pkg.module" may name one that is not loaded yet.
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as e:
            if e.name != path:
                raise  # the submodule exists but an import inside it failed: that is the error to see
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """``kind`` names the component in errors ("runtime", "generator", ...); ``entries`` maps each name to the
    dotted path of its class or function; ``error`` is the exception raised for an unknown name (a subclass of
    :class:`UnknownComponentError` lets callers catch one registry's misses); ``dotted`` allows names outside
    the registry given as dotted paths."""

    def __init__(self, kind: str, entries: dict[str, str], *, error: type[Exception] = UnknownComponentError,
                 dotted: bool = True):
        self.kind, self.error, self.dotted = kind, error, dotted
        self._entries = dict(entries)
        self._loaded: dict[str, T] = {}

    def names(self) -> list[str]:
        """The registered names, in registration order (what a CLI offers as ``choices``)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # unhashable (a config value that is a list): not a name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def path(self, name: str) -> str:
        """The dotted path ``name`` resolves to (raises like :meth:`get` for an unknown name)."""
        if name in self._entries:
            return self._entries[name]
        if self.dotted and isinstance(name, str) and "." in name:
            return name
        raise self.error(self._unknown(name))

    def get(self, name: str) -> T:
        """The component registered as ``name`` (or at the dotted path ``name``), imported on first use."""
        try:  # the hot path (a reward looks its metric up per call): one dict lookup
            return self._loaded[name]
        except KeyError:
            pass
        except TypeError:  # unhashable: not a name at all
            raise self.error(self._unknown(name)) from None
        path = self.path(name)
        try:
            obj = import_path(path)
        except (ImportError, AttributeError, ValueError) as e:
            if name in self._entries:
                raise  # a registered component that fails to import: the real error (a missing extra, ...)
            raise self.error(f"{self._unknown(name)}; importing {path!r} failed: {e}") from e
        self._loaded[name] = obj
        return obj

    def items(self) -> Iterator[tuple[str, T]]:
        """Every registered ``(name, component)``, importing each (for detection over all formats)."""
        return ((name, self.get(name)) for name in self._entries)

    def _unknown(self, name: Any) -> str:
        near = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        tail = " (or give a dotted path, module.Name)" if self.dotted else ""
        return f"unknown {self.kind} {str(name)[:200]!r}{hint}; choose one of: {', '.join(self._entries)}{tail}"
