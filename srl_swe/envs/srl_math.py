"""SRL-Math-v0: imitate an expert math solution one step at a time."""

from __future__ import annotations

from pathlib import Path

from srl_swe.envs.base import StepImitationEnv
from srl_swe.paths import bundled


class SRLMathEnv(StepImitationEnv):
    """
    ## Description
    The SRL paper's math setting as an environment. A reference solution (GSM8K, numbered steps, or
    ``{problem, steps, answer}`` JSONL) is split into steps; at step k the agent sees the problem and
    the expert's steps 1..k and writes step k+1, rewarded by its similarity to the expert's step k+1.
    The environment then appends the expert's step, whatever the agent wrote.

    ## Action Space
    ``UnicodeText(max_action_chars)``: ``<think>…</think>`` followed by the next step as plain text.

    ## Observation Space
    ``Dict(prompt=UnicodeText, messages=Sequence(Dict(role, content)))``: a system prompt and one user
    message with the problem and the steps so far; ``prompt`` is the same rendered as text.

    ## Rewards
    ``difflib.SequenceMatcher(None, predicted_step, expert_step).ratio()``; −1 when the output is not
    ``<think>…</think>`` followed by a non-empty step.

    ## Starting State
    As SRL-SWE-v0: a random solution (trajectory mode) or step example (step mode), or
    ``options={"index": i}``.

    ## Episode End
    Terminates after the last expert step (trajectory mode) or after one step (step mode, whose final
    observation is the prompt the step answered, as in SRL-SWE-v0).

    ## Arguments
    ``data`` (default: the bundled problems), ``mode``, ``window`` (default ``None`` = all previous
    steps), ``metric``, ``require_think`` (True; False also scores an output with no ``<think>`` block as the
    step, for small models), ``chat_template``, ``render_mode`` (``"ansi"``); ``keep`` is accepted for symmetry
    (reference solutions count as resolved).

    ## Info
    As SRL-SWE-v0 (``syntax`` is ``"text"``).

    ## Version History
    * v0: initial version.
    """

    kind = "math"  # the task kind (srl_swe.tasks) gives the syntax, the default window and the prompts

    def _default_data(self) -> Path:
        return bundled("math")
