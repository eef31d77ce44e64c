"""SRL-SWE-v0: imitate an expert software-engineering agent one action at a time."""

from __future__ import annotations

from pathlib import Path

from srl_swe.envs.base import StepImitationEnv
from srl_swe.paths import bundled


class SRLSWEEnv(StepImitationEnv):
    """
    ## Description
    Supervised Reinforcement Learning (SRL, arXiv 2510.25992) for coder agents. An expert agent's
    trajectory on a software issue (mini-swe-agent, SWE-agent, SWE-smith or OpenAI-style chat
    transcripts) is replayed step by step: at each step the agent proposes the next tool call and is
    rewarded by how closely it matches the expert's call. Whatever the agent does, the environment then
    follows the expert's path, so the next observation is the expert prefix with the expert's real tool
    output. No code is executed (see ``SRL-SWE-Exec-v0`` for that).

    ## Action Space
    ``UnicodeText(max_action_chars)``: the model's raw output, which must be ``<think>…</think>``
    followed by exactly one action in the environment's ``syntax``:
    ``xml`` (default, the SWE-smith format ``<function=bash><parameter=command>ls</parameter></function>``),
    ``qwen`` (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``) or ``bash`` (a fenced block, which
    can write only ``bash(command)``: on data with other tools ``gym.make`` fails, naming the syntaxes that can
    write it). Any output up to the default ``max_action_chars`` (2**20) is scored in under 1 s.

    ## Observation Space
    ``Dict(prompt=UnicodeText, messages=Sequence(Dict(role, content)))``: the chat messages of the prefix
    (system prompt listing the tools, the issue, then the expert's previous actions and their
    observations as ``OBSERVATION:`` user turns) and the same prompt rendered as text (ChatML, or by the
    ``chat_template`` callable you pass, e.g. ``partial(tokenizer.apply_chat_template, tokenize=False,
    add_generation_prompt=True)``).

    ## Rewards
    ``difflib.SequenceMatcher(None, predicted, expert).ratio()`` on the canonical renderings of the
    predicted and the expert tool call, in [0, 1]; the ``<think>`` text is not scored. An output that
    breaks the format scores −1. ``metric="lcs"`` gives 2·LCS/T instead (not the paper's).

    ## Starting State
    ``reset()`` picks a trajectory (``mode="trajectory"``) or a single step example (``mode="step"``)
    uniformly with the env's RNG; ``reset(options={"index": i})`` picks it explicitly.

    ## Episode End
    Terminates after the expert's last action (trajectory mode) or after one action (step mode, so a
    GRPO learner can sample G actions for the same observation). Never truncates. In step mode the
    episode is a single decision, so the final observation is the prompt the action answered (the expert's
    action is in ``info``); in trajectory mode it is the expert prefix through the last step.

    ## Arguments
    ``data`` (file, folder or list of ``Trajectory``; default: the bundled trajectories), ``mode``,
    ``syntax``, ``window`` (last k action/observation pairs in the context, default 2 as in the paper;
    ``None`` = full prefix), ``max_observation_chars`` (4000), ``include_thoughts`` (False), ``keep``
    (``"resolved"``: only trajectories whose patch resolved the issue), ``metric``, ``require_think`` (True;
    False also scores outputs with no ``<think>`` block, not the paper's format), ``chat_template``,
    ``render_mode`` (``"ansi"``).

    ## Info
    ``task_id``, ``trajectory_index``, ``step_index``, ``num_steps``, ``source_format``, ``syntax``; after a
    step also ``expert_action``, ``format_error`` and ``score`` (reward, valid, reason, similarity,
    predicted, expert).

    ## Version History
    * v0: initial version.
    """

    kind = "swe"  # the task kind (srl_swe.tasks) gives the syntax, the default window and the prompts

    def _default_data(self) -> Path:
        return bundled("swe")
