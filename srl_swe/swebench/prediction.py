"""The SWE-bench prediction: one typed record and one constructor (after swebench's ``TestSpec`` and
``make_test_spec``).

A prediction is what the harness grades, ``{instance_id, model_name_or_path, model_patch}``. Everything that
produces one (an agent episode, an oracle-file answer, ``srl-swe eval swebench``, the RLVR environment) builds
it with :func:`make_prediction`; a record read from a file or handed to a grader goes through
:func:`read_prediction`, which is as tolerant as SWE-bench (a missing or null ``model_patch`` is an empty
patch, a missing model name is ``"None"``) and raises :class:`PredictionError`, naming the instance, for what
cannot be graded. ``extra`` holds what srl-swe records next to the prediction in ``predictions.jsonl``
(``exit_status``, ``error``, ``seconds``, the oracle's ``mode``/``files``/``n_edits``/``raw_output``); the
harness reads only the three keys (:meth:`Prediction.to_dict` with ``extra=False``).

>>> p = make_prediction("repo__name-1", "diff --git a/x b/x\\n", "my-model", exit_status="submitted")
>>> p.to_dict()
{'instance_id': 'repo__name-1', 'model_name_or_path': 'my-model', 'model_patch': 'diff --git a/x b/x\\n', \
'exit_status': 'submitted'}
>>> read_prediction({"instance_id": "repo__name-1", "model_patch": None}).to_dict(extra=False)
{'instance_id': 'repo__name-1', 'model_name_or_path': 'None', 'model_patch': ''}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from srl_swe.errors import SRLError

#: The keys the harness reads (swebench's KEY_INSTANCE_ID, KEY_MODEL, KEY_PREDICTION), in its order.
KEYS = ("instance_id", "model_name_or_path", "model_patch")


class PredictionError(SRLError, ValueError):
    """A record that cannot be graded as a prediction. ``instance_id`` is its id when it has a usable one."""

    def __init__(self, message: str, instance_id: str | None = None):
        super().__init__(message)
        self.instance_id = instance_id


@dataclass(frozen=True)
class Prediction:
    """One instance's patch by one model; ``extra`` is kept beside it in srl-swe's files, in its order."""

    instance_id: str
    model_name_or_path: str
    model_patch: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def exit_status(self) -> str | None:
        """Why the agent episode that wrote the patch ended (agent mode), else None."""
        return self.extra.get("exit_status")

    @property
    def error(self) -> str | None:
        """Why no patch could be produced (the predictor failed, the answer did not parse...), else None."""
        return self.extra.get("error")

    def to_dict(self, *, extra: bool = True) -> dict[str, Any]:
        """The JSON record: the harness's three keys, then (unless ``extra=False``) the extra fields."""
        out: dict[str, Any] = {"instance_id": self.instance_id, "model_name_or_path": self.model_name_or_path,
                               "model_patch": self.model_patch}
        if extra:
            out.update(self.extra)
        return out


def make_prediction(instance_id: str, model_patch: str | None, model_name_or_path: str | None,
                    **extra: Any) -> Prediction:
    """The one way to build a :class:`Prediction`. ``model_patch=None`` is an empty patch (graded as
    ``empty_patch``), ``model_name_or_path=None`` is ``"None"`` (the harness names log folders after it)."""
    if not isinstance(instance_id, str) or not instance_id:
        raise PredictionError("prediction has no instance_id")
    if model_patch is not None and not isinstance(model_patch, str):
        raise PredictionError(f"model_patch must be a string, got {type(model_patch).__name__}", instance_id)
    return Prediction(instance_id, str(model_name_or_path or "None"), model_patch or "", dict(extra))


def read_prediction(record: Prediction | Mapping[str, Any]) -> Prediction:
    """A prediction from a JSON record (a line of a predictions file, a dict a caller built); a
    :class:`Prediction` is returned as it is. Keys other than the harness's three become ``extra``."""
    if isinstance(record, Prediction):
        return record
    if not isinstance(record, Mapping):
        raise PredictionError("prediction has no instance_id")
    extra = {k: v for k, v in record.items() if k not in KEYS}
    return make_prediction(record.get("instance_id"), record.get("model_patch"), record.get("model_name_or_path"),
                           **extra)
