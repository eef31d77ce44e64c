"""A text space for arbitrary Unicode (prompts, tool outputs, model outputs).

``gymnasium.spaces.Text`` checks every character against a finite charset, which cannot hold all of
Unicode. :class:`UnicodeText` accepts any ``str`` within the length bounds and samples printable
ASCII, so ``check_env`` and random policies still work.
"""

from __future__ import annotations

import string
from typing import Any

from gymnasium import spaces

_PRINTABLE = string.printable


class UnicodeText(spaces.Text):
    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None):
        super().__init__(max_length=max_length, min_length=min_length, charset=_PRINTABLE, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"


def chat_observation_space(max_chars: int) -> spaces.Dict:
    """``{"prompt": str, "messages": ({"role": str, "content": str}, ...)}``."""
    message = spaces.Dict({"role": UnicodeText(32), "content": UnicodeText(max_chars)})
    return spaces.Dict({"prompt": UnicodeText(max_chars), "messages": spaces.Sequence(message)})
