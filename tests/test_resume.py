"""Resume files that a kill at any point leaves readable: the eval's predictions log (torn tail repaired before
the next append, fsynced, split on newlines only) and the training run's metrics.jsonl (cut back to the
resumed step, a torn line tolerated). No model and no sandbox: the end-to-end resume tests are in
test_train.py and test_eval_swebench.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from srl_swe.eval.swebench import PredictionLog, predict_all


def _rec(iid: str, patch: str = "diff\n") -> dict:
    return {"instance_id": iid, "model_name_or_path": "m", "model_patch": patch}


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the log must end with a complete line"
    return data.split(b"\n")[:-1]


def test_torn_last_line_is_cut_before_the_next_append(tmp_path: Path):
    log = PredictionLog(tmp_path / "predictions.jsonl")
    log.append(_rec("a"))
    log.append(_rec("b"))
    with log.path.open("ab") as f:  # a crash in the middle of writing c's line
        f.write(json.dumps(_rec("c")).encode()[:25])
    assert set(log.read()) == {"a", "b"}  # the torn line is skipped: c is redone
    log.append(_rec("c"))
    assert set(log.read()) == {"a", "b", "c"} and len(_lines(log.path)) == 3
    assert PredictionLog(log.path).read_report()[1] == []  # nothing unreadable left


def test_whole_last_record_without_newline_is_kept(tmp_path: Path):
    path = tmp_path / "predictions.jsonl"
    path.write_bytes(json.dumps(_rec("a")).encode() + b"\n" + json.dumps(_rec("b")).encode())  # newline lost
    log = PredictionLog(path)
    log.append(_rec("c"))
    assert set(log.read()) == {"a", "b", "c"} and len(_lines(path)) == 3


def test_append_is_fsynced(tmp_path: Path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    PredictionLog(tmp_path / "p.jsonl").append(_rec("a"))
    assert synced, "the record was written without fsync"


def test_unicode_line_separators_survive(tmp_path: Path):
    # ensure_ascii=False writes these raw; str.splitlines() cuts a line at each of them.
    texts = ["a\u2028b", "c\u2029d", "e\x85f", "g\x1ch\x1di\x1ej", "plain"]
    log = PredictionLog(tmp_path / "predictions.jsonl")
    for n, text in enumerate(texts):
        log.append(_rec(f"id-{n}", f"+{text}\n"))
    assert "\u2028".encode() in log.path.read_bytes()  # really written raw, not escaped
    got = PredictionLog(log.path).read()
    assert [got[f"id-{n}"]["model_patch"] for n in range(len(texts))] == [f"+{t}\n" for t in texts]


def test_lone_surrogate_round_trips(tmp_path: Path):
    log = PredictionLog(tmp_path / "predictions.jsonl")
    log.append(_rec("a", "+\ud800 half a pair\n"))  # strict UTF-8 cannot encode it
    assert log.read()["a"]["model_patch"] == "+\ud800 half a pair\n"


def test_read_report_names_every_unreadable_line(tmp_path: Path):
    path = tmp_path / "preds.jsonl"
    path.write_bytes(b"\n".join([json.dumps(_rec("a")).encode(), b"[1, 2]", b"", b"\xff\xfe{",
                                 json.dumps({"instance_id": "b", "model_patch": 3}).encode(), b'{"instance_id": "c']))
    done, bad = PredictionLog(path).read_report()
    assert list(done) == ["a"]
    assert [n for n, _ in bad] == [2, 4, 5, 6]  # the blank line 3 is no record
    assert "model_patch of b" in bad[2][1]


def test_resumed_predictions_redo_only_the_torn_instance(tmp_path: Path):
    log = PredictionLog(tmp_path / "predictions.jsonl")
    log.append(_rec("a"))
    with log.path.open("ab") as f:
        f.write(b'{"instance_id": "b", "model_pa')
    calls: list[str] = []

    def predictor(inst, out):
        calls.append(inst.instance_id)
        return {"model_patch": f"patch of {inst.instance_id}\n"}

    instances = [SimpleNamespace(instance_id=i) for i in "abc"]
    done = predict_all(instances, predictor, tmp_path, model_name="m", progress=False)
    assert sorted(calls) == ["b", "c"] and set(done) == {"a", "b", "c"}
    calls.clear()
    assert set(predict_all(instances, predictor, tmp_path, model_name="m", progress=False)) == {"a", "b", "c"}
    assert calls == [], "a rerun after the repair redoes nothing"


# -- training run files --------------------------------------------------------------------------------
def _metrics(run: Path, steps: range, tail: bytes = b"") -> None:
    run.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps({"step": s, "loss": 1 / s, "reward": s / 10}) + "\n" for s in steps)
    (run / "metrics.jsonl").write_bytes(body.encode() + tail)


def test_plot_tolerates_a_torn_last_line(tmp_path: Path):
    from srl_swe.train.plot import plot_run, read_metrics

    _metrics(tmp_path, range(1, 5), b'{"step": 5, "lo')
    assert [s for s, _ in read_metrics(tmp_path)["loss"]] == [1, 2, 3, 4]
    assert plot_run(tmp_path).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("step, kept", [(3, [1, 2, 3]), (0, []), (9, [1, 2, 3, 4, 5])])
def test_trim_metrics_keeps_steps_up_to_the_checkpoint(tmp_path: Path, step: int, kept: list[int]):
    from srl_swe.train.checkpoints import trim_metrics

    _metrics(tmp_path, range(1, 6), b'{"step": 6, "lo')
    trim_metrics(tmp_path, step)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == kept
    assert not (tmp_path / "metrics.jsonl.tmp").exists()
