"""The agent: policies acting in a sandboxed runtime through the tools, one episode per task."""

from srl_swe.agent.episode import EXIT_STATUSES, AgentResult, Episode, ExecStep
from srl_swe.agent.loop import run_agent
from srl_swe.agent.policies import ModelPolicy, Policy, ReplayPolicy

__all__ = ["EXIT_STATUSES", "AgentResult", "Episode", "ExecStep", "ModelPolicy", "Policy", "ReplayPolicy",
           "run_agent"]
