"""The error types raised at the project's boundaries.

Every problem with input data (a trajectory file, a record, a model output that is parsed as data)
surfaces as :class:`TrajectoryFormatError`, which names the file, the record and what was expected,
so a user can find and fix the offending input without reading a traceback.
"""

from __future__ import annotations


class SRLError(Exception):
    """Base class for every error srl-swe raises on purpose."""


class TrajectoryFormatError(SRLError, ValueError):
    """A trajectory (or math) data file or record is not in a supported shape.

    ``source`` is the file path (or ``"<string>"``), ``record`` the record id or line/index within it
    (``None`` for whole-file problems), ``expected`` says what the loader wanted to see.
    """

    def __init__(self, source: str, expected: str, record: str | int | None = None, got: str | None = None):
        self.source = str(source)
        self.record = record
        self.expected = expected
        self.got = got
        where = self.source if record is None else f"{self.source} [record {record}]"
        msg = f"{where}: expected {expected}"
        if got:
            msg += f"; got {got}"
        super().__init__(msg)


class ActionParseError(SRLError, ValueError):
    """A model output or an action string does not follow the environment's action syntax."""


class ContextLengthError(SRLError, ValueError):
    """A prompt and its completion budget do not fit the model's context (the positions it was trained on).

    ``prompt_tokens + max_new_tokens > context`` by ``over`` tokens (:mod:`srl_swe.models.context`). ``where``
    names the prompt (an instance, an example, a problem); ``advice`` says what to do about it.
    """

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context: int, *, where: str | None = None,
                 advice: str = ""):
        self.prompt_tokens, self.max_new_tokens, self.context = prompt_tokens, max_new_tokens, context
        self.where = where
        self.over = prompt_tokens + max_new_tokens - context
        msg = (f"prompt is {prompt_tokens:,} tokens + {max_new_tokens:,} new > {context:,} context by "
               f"{self.over:,}")
        super().__init__((f"{where}: " if where else "") + msg + (f": {advice}" if advice else ""))
