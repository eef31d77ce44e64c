"""mini-swe-agent 2.x trajectories, written in the test by mini-swe-agent's own agent and saved by its own code.

Its ``DefaultAgent`` runs real commands in a ``LocalEnvironment`` (a temporary folder), driven offline by its
deterministic test models, with the templates of its own SWE-bench configs: the text config (```` ```mswea_bash_command
````), the XML one (``<mswea_bash_command>``), and tool calls as chat completions and as the Responses API. The actions
are parsed by mini-swe-agent's own parsers (``parse_regex_actions``, ``parse_toolcall_actions[_response]``), as its
LiteLLM models parse an LM's reply, so a change of its format fails here rather than in a user's load.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest
import yaml

from srl_swe.envs.policies import ExpertStepPolicy
from srl_swe.errors import TrajectoryFormatError
from srl_swe.schema import ToolCall
from srl_swe.trajectories import load_file, load_trajectories
from srl_swe.trajectories.minisweagent import MsweaBashSyntax, MsweaXmlSyntax

INSTANCE, TASK = "demo__hello-1", "Make hello.sh print hello."
SCRIPT = "cat <<'EOF' > hello.sh\necho hello\nEOF"
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat hello.sh"
# The expert's turns; a text-based agent writes one command a turn, a tool-calling one may call several at once.
TURNS = (("ls -a",), (SCRIPT,), ("sh hello.sh", "grep -c hello hello.sh"), (SUBMIT,))
COMMANDS = [c for turn in TURNS for c in turn]
OUTPUTS = [".\n..\n", "", "hello\n", "1\n"]  # what the commands print; the submit command's output is the submission
OBSERVATIONS = [f"<returncode>0</returncode>\n<output>\n{out}</output>" for out in OUTPUTS] + ["echo hello\n"]
CONFIGS = {"text": "swebench_backticks.yaml", "xml": "swebench_xml.yaml", "toolcall": "swebench.yaml",
           "response": "swebench.yaml"}
KINDS = tuple(CONFIGS)


def _default_action_regex(package_dir: Path) -> str:
    """The ``action_regex`` default of mini-swe-agent's text-based LiteLLM model, read from its source: importing it
    imports litellm, which takes seconds and fetches a price list from the network."""
    tree = ast.parse((package_dir / "models" / "litellm_textbased_model.py").read_text(encoding="utf-8"))
    config = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LitellmTextbasedModelConfig")
    return next(ast.literal_eval(s.value) for s in config.body  # type: ignore[arg-type]
                if isinstance(s, ast.AnnAssign) and getattr(s.target, "id", "") == "action_regex")


def _write(kind: str, out: Path) -> Path:
    """Runs mini-swe-agent 2.x on the task with the expert's turns (and, text-based, one malformed reply) and
    saves the trajectory as its SWE-bench runner does. Imported here: the import reads its settings."""
    from minisweagent import package_dir
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.local import LocalEnvironment
    from minisweagent.models.test_models import (
        DeterministicModel,
        DeterministicResponseAPIToolcallModel,
        DeterministicToolcallModel,
        make_output,
        make_toolcall_output,
    )
    from minisweagent.models.utils.actions_text import parse_regex_actions
    from minisweagent.models.utils.actions_toolcall import parse_toolcall_actions
    from minisweagent.models.utils.actions_toolcall_response import parse_toolcall_actions_response

    config = yaml.safe_load((package_dir / "config" / "benchmarks" / CONFIGS[kind]).read_text(encoding="utf-8"))
    errors = config["model"]["format_error_template"]
    parse: dict = {}  # how the LiteLLM model of this config reads a reply: its actions, or its FormatError

    def with_actions(reply: dict) -> dict:
        return {**reply, "extra": {**reply["extra"], "actions": parse[kind](reply)}}

    class Text(DeterministicModel):
        def query(self, messages, **kwargs):
            return with_actions(super().query(messages, **kwargs))

    class Toolcall(DeterministicToolcallModel):
        def query(self, messages, **kwargs):
            return with_actions(super().query(messages, **kwargs))

    class Response(DeterministicResponseAPIToolcallModel):
        def query(self, messages, **kwargs):
            return with_actions(super().query(messages, **kwargs))

    thoughts = [f"Step {k}: {turn[0].split()[0]}." for k, turn in enumerate(TURNS)]
    calls = [[{"id": f"call_{k}_{j}", "type": "function", "function": {"name": "bash", "arguments": json.dumps(
        {"command": c})}} for j, c in enumerate(turn)] for k, turn in enumerate(TURNS)]
    if kind in ("text", "xml"):
        regex = config["model"].get("action_regex") or _default_action_regex(package_dir)
        parse[kind] = lambda r: parse_regex_actions(r["content"], action_regex=regex, format_error_template=errors)
        fence = ("```mswea_bash_command\n{}\n```" if kind == "text" else "<mswea_bash_command>{}</mswea_bash_command>")
        replies = [make_output(f"THOUGHT: {thoughts[k]}\n\n{fence.format(c)}", [], cost=0.0)
                   for k, turn in enumerate(TURNS) for c in turn]
        replies.insert(2, make_output("THOUGHT: I forgot the block this time.", [], cost=0.0))  # a FormatError
        model = Text(outputs=replies, observation_template=config["model"]["observation_template"])
    elif kind == "toolcall":
        parse[kind] = lambda r: parse_toolcall_actions(
            [SimpleNamespace(id=c["id"], function=SimpleNamespace(**c["function"])) for c in r["tool_calls"]],
            format_error_template=errors)
        replies = [make_toolcall_output(t, c, []) for t, c in zip(thoughts, calls, strict=True)]
        model = Toolcall(outputs=replies, observation_template=config["model"]["observation_template"])
    else:
        parse[kind] = lambda r: parse_toolcall_actions_response(r["output"], format_error_template=errors)
        replies = [{"object": "response", "extra": {"cost": 0.0}, "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": t}]},
            *({"type": "function_call", "call_id": x["id"], **x["function"]} for x in c)]}
            for t, c in zip(thoughts, calls, strict=True)]
        model = Response(outputs=replies, observation_template=config["model"]["observation_template"])
    work = out / f"work-{kind}"
    work.mkdir()
    # Not the config's environment: it is the SWE-bench image's (cwd /testbed, BASH_ENV=/root/.bashrc).
    env = LocalEnvironment(cwd=str(work), timeout=30)
    path = out / kind / INSTANCE / f"{INSTANCE}.traj.json"
    agent = DefaultAgent(model, env, **{**config["agent"], "cost_limit": 0, "output_path": path})
    info = agent.run(TASK)
    assert info == {"exit_status": "Submitted", "submission": "echo hello\n"}, info
    agent.save(path, {"info": info, "instance_id": INSTANCE})  # as minisweagent.run.benchmarks.swebench saves
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("mswea")
    with pytest.MonkeyPatch.context() as mp:  # no banner, and its settings folder (made on import) is ours
        mp.setenv("MSWEA_SILENT_STARTUP", "1")
        mp.setenv("MSWEA_GLOBAL_CONFIG_DIR", str(out / "config"))
        try:
            import minisweagent  # noqa: F401
        except ImportError:
            pytest.fail("mini-swe-agent is not installed: pip install -e '.[dev]'")
        return {kind: _write(kind, out) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_mini_swe_agent_2_trajectory_loads(written: dict[str, Path], kind: str):
    raw = json.loads(written[kind].read_text(encoding="utf-8"))
    assert raw["trajectory_format"] == "mini-swe-agent-1.1"
    (t,), skipped = load_file(written[kind])
    assert skipped == [] and t.source_format == "mini-swe-agent" and t.id == INSTANCE
    assert [s.action for s in t.steps] == [ToolCall.bash(c) for c in COMMANDS]
    assert [s.observation for s in t.steps] == OBSERVATIONS
    assert t.steps[0].thought == "Step 0: ls." and t.steps[2].thought == "Step 2: sh."  # "THOUGHT:" removed
    assert t.task.problem_statement == TASK  # from its <pr_description>
    assert t.submission == raw["info"]["submission"] == "echo hello\n" and t.resolved is None
    meta = dict(t.metadata)
    assert meta["exit_status"] == "Submitted"
    assert meta["syntax"] == {"text": "mswea_bash", "xml": "mswea_xml"}.get(kind, "tool_calls")
    assert meta["format_errors_skipped"] == ("1" if kind in ("text", "xml") else "0")
    scanned = load_trajectories(written[kind].parents[1], keep="all")  # found in a folder scan too
    assert scanned.skipped == [] and [s.action for s in scanned.trajectories[0].steps] == [s.action for s in t.steps]


@pytest.mark.parametrize("kind", KINDS)
def test_replay_of_mini_swe_agent_2_scores_one(written: dict[str, Path], kind: str):
    env = gym.make("SRL-SWE-v0", data=written[kind], keep="all")
    policy = ExpertStepPolicy(env.unwrapped)
    obs, info = env.reset(options={"index": 0})
    rewards, done = [], False
    while not done:
        obs, reward, done, _, info = env.step(policy(obs, info))
        rewards.append(reward)
    assert rewards == [1.0] * len(COMMANDS)


@pytest.mark.parametrize("kind", KINDS)
def test_text_or_tool_calls_are_read_without_extra_actions(written: dict[str, Path], kind: str, tmp_path: Path):
    raw = json.loads(written[kind].read_text(encoding="utf-8"))
    for msg in raw["messages"]:
        msg.get("extra", {}).pop("actions", None)
    path = tmp_path / f"{INSTANCE}.traj.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    (t,), _ = load_file(path)
    assert [s.action for s in t.steps] == [ToolCall.bash(c) for c in COMMANDS]
    assert [s.observation for s in t.steps] == OBSERVATIONS and t.steps[1].thought == "Step 1: cat."


def _with_first_actions(written: dict[str, Path], tmp_path: Path, actions: object, kind: str = "text") -> Path:
    raw = json.loads(written[kind].read_text(encoding="utf-8"))
    first = next(m for m in raw["messages"] if m.get("role") == "assistant" or m.get("object") == "response")
    first["extra"]["actions"] = actions
    path = tmp_path / f"{INSTANCE}.traj.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


NESTED: object = "ls"
for _ in range(90):
    NESTED = [NESTED]


@pytest.mark.parametrize("actions", ["ls", {"command": "ls"}, ["ls"], [{"cmd": "ls"}], [{"command": 5}],
                                     [{"command": ["ls"]}], [{"command": None}], NESTED, [{"command": NESTED}],
                                     [{"command": "ls"}] * 20_000 + [[{"command": "ls"}]]],
                         ids=["str", "dict", "list-of-str", "no-command", "int", "list", "null", "nested",
                              "nested-command", "huge"])
def test_malformed_extra_actions_are_a_format_error(written: dict[str, Path], tmp_path: Path, actions: object):
    path = _with_first_actions(written, tmp_path, actions)
    with pytest.raises(TrajectoryFormatError, match=r"\[record message 2\]: expected \"extra\.actions\" to be") as e:
        load_file(path)
    assert e.value.source == str(path) and len(str(e.value)) < 400
    scan = load_trajectories(tmp_path, keep="all")  # a folder scan reports the file and goes on
    assert scan.trajectories == [] and [s.source for s in scan.skipped] == [str(path)]


@pytest.mark.parametrize("kind", KINDS)
def test_extra_without_actions_or_odd_call_ids_still_load(written: dict[str, Path], tmp_path: Path, kind: str):
    raw = json.loads(written[kind].read_text(encoding="utf-8"))
    turns = [m for m in raw["messages"] if m.get("role") == "assistant" or m.get("object") == "response"]
    turns[0]["extra"] = "not an object"  # no actions there: read from the text or the tool calls
    for action in turns[1]["extra"]["actions"]:
        action["tool_call_id"] = ["not", "a", "string"]  # ignored: the observation is matched by order
    path = tmp_path / f"{INSTANCE}.traj.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    (t,), _ = load_file(path)
    assert [s.action for s in t.steps] == [ToolCall.bash(c) for c in COMMANDS]
    assert [s.observation for s in t.steps] == OBSERVATIONS


def test_malformed_responses_api_output_is_a_format_error(written: dict[str, Path], tmp_path: Path):
    for output, got in (({"type": "message"}, "got dict"), (["text"], "got 'text'")):
        raw = json.loads(written["response"].read_text(encoding="utf-8"))
        next(m for m in raw["messages"] if m.get("object") == "response")["output"] = output
        path = tmp_path / f"{INSTANCE}.traj.json"
        path.write_text(json.dumps(raw), encoding="utf-8")
        with pytest.raises(TrajectoryFormatError, match=rf"\[record message 2\]: expected .*Responses-API.*{got}"):
            load_file(path)


@pytest.mark.parametrize("opener", ["```mswea_bash_command\n", "<mswea_bash_command>", "```bash\n", "```"])
def test_unclosed_action_blocks_load_in_linear_time(written: dict[str, Path], tmp_path: Path, opener: str):
    raw = json.loads(written["text"].read_text(encoding="utf-8"))
    first = next(m for m in raw["messages"] if m.get("role") == "assistant")
    first["content"] += "\n" + opener * 100_000  # 0.3-2 MB of action blocks opened after the action
    path = tmp_path / f"{INSTANCE}.traj.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    start = time.process_time()  # CPU time: other processes on the machine do not count
    (t,), _ = load_file(path)
    assert time.process_time() - start < 1.0
    assert [s.action for s in t.steps] == [ToolCall.bash(c) for c in COMMANDS] and t.steps[0].thought == "Step 0: ls."


def test_mswea_syntaxes_write_and_read_as_mini_swe_agent_does():
    call = ToolCall.bash("ls -la\necho hi")
    for syntax, text in ((MsweaBashSyntax(), "```mswea_bash_command\nls -la\necho hi\n```"),
                         (MsweaXmlSyntax(), "<mswea_bash_command>ls -la\necho hi</mswea_bash_command>")):
        assert syntax.render(call) == text and syntax.parse(f" {text}\n") == call
        padded = text.replace("ls", "  ls").replace("hi", "hi  ")  # stripped, as its parse_regex_actions strips
        assert [m.call for m in syntax.find(f"THOUGHT: x\n{padded}\nmore")] == [call]
