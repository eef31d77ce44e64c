"""One writer for a step example's row (:func:`srl_swe.dataset.step_rows`): `srl-swe data build`, training's
SRL and SFT rows and `srl-swe eval steps` give the same rows for the same trajectories and options."""

from __future__ import annotations

from pathlib import Path

import datasets

from srl_swe.cli import main
from srl_swe.dataset import COLUMNS, PLACEHOLDER_THOUGHT
from srl_swe.eval.steps import rows_from_path
from srl_swe.trajectories import load_trajectories

REPO = Path(__file__).resolve().parents[1]


def _build(src: Path, out: Path, *args: str) -> list[dict]:
    assert main(["data", "build", str(src), "-o", str(out), "--quiet", *args]) == 0
    return datasets.load_from_disk(str(out)).to_list()


def test_eval_steps_reads_the_rows_data_build_writes(tmp_path: Path, bundled_swe: Path):
    # eval steps on trajectories: every outcome, the SWE kind's syntax (xml) and window (the last 2 pairs)
    built = _build(bundled_swe, tmp_path / "swe", "--window", "2", "--keep", "all")
    assert len(built) == 34 and list(built[0]) == list(COLUMNS)
    assert rows_from_path(bundled_swe) == built
    assert rows_from_path(tmp_path / "swe") == built


def test_training_rows_are_data_build_rows(tmp_path: Path, bundled_math: Path):
    from srl_swe.train.config import load_config
    from srl_swe.train.data import build_datasets

    cfg = load_config(REPO / "configs" / "cpu-tiny-test.yaml",
                      [f"output_dir={tmp_path / 'run'}", "eval_fraction=0", "eval_steps=null"])
    built = _build(bundled_math, tmp_path / "math", "--keep", cfg.keep)
    srl, held = build_datasets(cfg, "srl")
    assert held is None and srl.to_list() == built
    assert sorted(p.name for p in (tmp_path / "run" / "data").iterdir()) == ["train-rank0.arrow"]  # no spill left
    sft, _ = build_datasets(cfg, "sft")
    assert [{k: v for k, v in r.items() if k != "completion"} for r in sft.to_list()] == built
    # The bundled math steps carry no thought of their own, so SFT's target thinks the placeholder.
    assert not any(s.thought for t in load_trajectories(bundled_math).trajectories for s in t.steps)
    assert [r["completion"] for r in sft.to_list()] == [
        [{"role": "assistant", "content": f"<think>\n{PLACEHOLDER_THOUGHT}\n</think>\n{r['expert_action']}"}]
        for r in built]
