"""The one registry mechanism (srl_swe.registry) and the registries built on it: lazy import, dotted-path
fallback, one error listing the options, CLI choices from ``names()``, and a trajectory format added as one
module plus one registry line."""

from __future__ import annotations

import doctest
import json
import sys
import textwrap
from pathlib import Path

import pytest

import srl_swe.registry
import srl_swe.trajectories
from srl_swe.actions import SYNTAXES, ActionSyntax, get_syntax
from srl_swe.envs.policies import POLICIES, ExpertStepPolicy, NoisyExpertStepPolicy
from srl_swe.envs.registration import ENV_IDS
from srl_swe.errors import SRLError, TrajectoryFormatError
from srl_swe.registry import Registry, UnknownComponentError, import_path
from srl_swe.rewards import METRICS, get_metric, sequence_similarity
from srl_swe.trajectories import FORMATS, load_file


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh importable package ``regtest_plugins`` (a unique name per test: nothing of it is imported yet)."""
    name = f"regtest_plugins_{abs(hash(tmp_path)) % 10**8}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "things.py").write_text(textwrap.dedent("""
        class Thing:
            class Inner:
                pass

        def double(x):
            return 2 * x
    """), encoding="utf-8")
    (pkg / "broken.py").write_text("import regtest_no_such_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[mod]


def test_module_doctest_passes():
    result = doctest.testmod(srl_swe.registry)
    assert result.attempted >= 3 and result.failed == 0


def test_lookup_is_lazy_and_cached(plugins: str):
    reg = Registry("thing", {"thing": f"{plugins}.things.Thing", "double": f"{plugins}.things:double"})
    assert f"{plugins}.things" not in sys.modules  # building a registry imports nothing
    assert reg.names() == ["thing", "double"] and list(reg) == ["thing", "double"] and len(reg) == 2
    assert "thing" in reg and "nope" not in reg and ["unhashable"] not in reg
    thing = reg.get("thing")
    assert f"{plugins}.things" in sys.modules and thing.__name__ == "Thing"
    assert reg.get("thing") is thing
    assert reg.get("double")(21) == 42
    assert dict(reg.items()) == {"thing": thing, "double": reg.get("double")}
    assert reg.path("double") == f"{plugins}.things:double"


def test_dotted_path_fallback(plugins: str):
    reg = Registry("thing", {"thing": f"{plugins}.things.Thing"})
    assert reg.get(f"{plugins}.things.double")(2) == 4
    assert reg.get(f"{plugins}.things:Thing.Inner").__name__ == "Inner"  # nested after ":"
    assert reg.path(f"{plugins}.things.double") == f"{plugins}.things.double"
    # "pkg.module" names a submodule its package never imported: the module itself comes back.
    assert import_path(f"{plugins}.things").__name__ == f"{plugins}.things"
    with pytest.raises(UnknownComponentError, match=r"^unknown thing .*; importing .* failed: .*no attribute 'nope'"):
        reg.get(f"{plugins}.things.nope")
    with pytest.raises(UnknownComponentError, match=r"importing 'regtest_nowhere\.Thing' failed"):
        reg.get("regtest_nowhere.Thing")
    strict = Registry("thing", {"thing": f"{plugins}.things.Thing"}, dotted=False)
    with pytest.raises(UnknownComponentError) as info:
        strict.get(f"{plugins}.things.double")
    assert str(info.value).endswith("choose one of: thing")


def test_unknown_name_lists_every_option_and_the_nearest():
    reg = Registry("runtime", {"docker": "a.B", "local": "a.C"})
    with pytest.raises(UnknownComponentError) as info:
        reg.get("dokcer")
    assert str(info.value) == ("unknown runtime 'dokcer' (did you mean 'docker'?); choose one of: docker, local "
                               "(or give a dotted path, module.Name)")
    assert isinstance(info.value, SRLError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownComponentError, match=r"^unknown runtime \"\['x'\]\"; choose one of: docker, local"):
        reg.get(["x"])  # type: ignore[arg-type]

    class NoSuchRuntime(UnknownComponentError):
        pass

    mine = Registry("runtime", {"docker": "a.B"}, error=NoSuchRuntime)
    with pytest.raises(NoSuchRuntime, match="choose one of: docker"):
        mine.get("podman")


def test_a_registered_component_that_fails_to_import_raises_the_real_error(plugins: str):
    reg = Registry("thing", {"broken": f"{plugins}.broken.Thing"})
    with pytest.raises(ModuleNotFoundError, match="regtest_no_such_dependency"):
        reg.get("broken")
    # A submodule that exists but fails inside: its own error, not "no such module".
    with pytest.raises(ModuleNotFoundError, match="regtest_no_such_dependency"):
        import_path(f"{plugins}.broken")


def test_project_registries_resolve_every_entry():
    assert [m.__name__ for _, m in FORMATS.items()] == [
        "srl_swe.trajectories.minisweagent", "srl_swe.trajectories.sweagent", "srl_swe.trajectories.chat",
        "srl_swe.trajectories.math"]
    assert all(isinstance(f.RECORDS, bool) and f.EXPECTED and callable(f.detect) and callable(f.load)
               for _, f in FORMATS.items())
    assert SYNTAXES.names() == ["xml", "qwen", "bash", "text"]
    assert all(get_syntax(n).name == n and get_syntax(n) is get_syntax(n) for n in SYNTAXES)
    assert METRICS.names() == ["sequence_matcher", "lcs"] and get_metric("sequence_matcher") is sequence_similarity
    assert dict(POLICIES.items()) == {"replay": ExpertStepPolicy, "noisy": NoisyExpertStepPolicy}
    with pytest.raises(ValueError, match=r"^unknown action syntax 'xlm' \(did you mean 'xml'\?\); choose one of: "
                                         r"xml, qwen, bash, text"):
        get_syntax("xlm")
    with pytest.raises(ValueError, match=r"^unknown metric 'lcs2' \(did you mean 'lcs'\?\)"):
        get_metric("lcs2")


def test_dotted_syntax_and_metric(plugins: str, tmp_path: Path):
    (tmp_path / plugins / "mine.py").write_text(textwrap.dedent("""
        from srl_swe.actions import XmlSyntax

        class LoudXml(XmlSyntax):
            name = "loud"

        def exact(a, b):
            return float(a == b)
    """), encoding="utf-8")
    assert get_syntax(f"{plugins}.mine.LoudXml").name == "loud"
    assert isinstance(get_syntax(f"{plugins}.mine:LoudXml"), ActionSyntax)
    assert get_metric(f"{plugins}.mine.exact")("a", "a") == 1.0
    with pytest.raises(UnknownComponentError, match="not an ActionSyntax subclass"):
        get_syntax(f"{plugins}.mine.exact")


def test_outcome_rewards_registry():
    pytest.importorskip("math_verify")
    from srl_swe.train import outcome

    assert outcome.OUTCOME_REWARDS.names() == ["math"]
    reward = outcome.outcome_reward("math")
    assert reward is outcome.math_answer and reward.__name__ == "math_answer"  # TRL logs rewards/math_answer/mean
    assert reward(prompts=None, completions=["\\boxed{4}", "4"], answer=["4", "4"]) == [1.0, 0.0]
    assert doctest.testmod(outcome).failed == 0
    with pytest.raises(UnknownComponentError, match=r"^unknown outcome reward 'swe'; choose one of: math"):
        outcome.outcome_reward("swe")


def test_cli_choices_come_from_the_registries():
    from srl_swe.cli import build_parser

    parser = build_parser()

    def choices(*path: str) -> list[str]:
        p = parser
        for name in path[:-1]:
            p = next(a for a in p._actions if a.dest in ("command", "action")).choices[name]
        return list(next(a for a in p._actions if a.option_strings and a.option_strings[-1] == path[-1]).choices)

    assert choices("env", "run", "--policy") == POLICIES.names()
    assert choices("env", "run", "--env") == list(ENV_IDS)
    assert choices("data", "build", "--syntax") == SYNTAXES.names()


def test_a_new_trajectory_format_is_one_module_plus_one_line(plugins: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    (tmp_path / plugins / "qa.py").write_text(textwrap.dedent('''
        from srl_swe.schema import Step, Task, ToolCall, Trajectory

        RECORDS = True
        EXPECTED = "a qa record {q, a}"

        def detect(obj):
            return isinstance(obj, dict) and set(obj) == {"q", "a"}

        def load(obj, source, record, default_id):
            return Trajectory(Task(default_id, obj["q"], answer=obj["a"]), (Step(ToolCall.text(obj["a"])),),
                              "qa", source, "math", True)
    '''), encoding="utf-8")
    entries = {name: FORMATS.path(name) for name in FORMATS}
    with_qa = Registry("trajectory format", {**entries, "qa": f"{plugins}.qa"})  # the one line
    monkeypatch.setattr(srl_swe.trajectories, "FORMATS", with_qa)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [{"q": "1+1?", "a": "2"}, {"problem": "x", "steps": ["y"]},
                                                      {"z": 1}]) + "\n", encoding="utf-8")
    trajs, skipped = load_file(rows)
    assert [t.source_format for t in trajs] == ["qa", "math-steps"]
    assert trajs[0].task.answer == "2" and trajs[0].id == "rows-1"
    assert [s.record for s in skipped] == ["line 3"]
    assert skipped[0].reason == (f'{rows} [record line 3]: expected a chat record with "messages" or a math record '
                                 "({question, answer} / {problem, steps} / {problem, solution}) or a qa record {q, a}; "
                                 "got fields ['z']")
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"q": "2+2?", "a": "4"}), encoding="utf-8")
    assert [t.task.answer for t in load_file(single)[0]] == ["4"]
    # Nothing matches a whole file: the error lists the record formats, then the whole-file ones.
    single.write_text(json.dumps({"z": 1}), encoding="utf-8")
    with pytest.raises(TrajectoryFormatError) as info:
        load_file(single)
    msg = str(info.value)
    assert msg.startswith(f"{single} [record 0]: expected a chat record with \"messages\" or a math record")
    assert "or a qa record {q, a}, or as a whole file a mini-swe-agent .traj.json" in msg
    assert "or a SWE-agent .traj" in msg and msg.endswith("got fields ['z']")
