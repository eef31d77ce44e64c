"""Task kinds: everything that differs between a software task and a math problem, in one object each.

A kind says which action syntaxes its steps are written in (and the default), how much of the expert's path
a prompt shows by default, the system prompt and the task message, how an expert step becomes the target text,
and which environment serves it. :mod:`srl_swe.steps` builds every prompt through the kind of the trajectory
(``TASKS.get(t.kind)``), and the environments, training data, step evaluation and agent ask the kind instead
of testing ``kind == "math"``; a new kind of task is one module with one :class:`TaskKind` plus one line in
:data:`TASKS`.

>>> TASKS.get("math").resolve_syntax(None), TASKS.get("swe").resolve_syntax(None)
('text', 'xml')
>>> TASKS.get("swe").resolve_window("default"), TASKS.get("math").resolve_window("default") is None
(2, True)
"""

from __future__ import annotations

from srl_swe.registry import Registry, UnknownComponentError
from srl_swe.tasks.base import Message, TaskKind, truncate

#: Task kind name (``Trajectory.kind``, the training config's ``task``) -> its :class:`TaskKind`.
TASKS: Registry[TaskKind] = Registry("task kind", {
    "swe": "srl_swe.tasks.swe.SWE",
    "math": "srl_swe.tasks.math.MATH",
}, dotted=False)

__all__ = ["TASKS", "Message", "TaskKind", "UnknownComponentError", "truncate"]
