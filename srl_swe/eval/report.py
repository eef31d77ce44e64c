"""``results.json`` of ``srl-swe eval swebench``: per-instance entries, their totals and agent figures, and the
table printed at the end. A run and a merge of its shards (:mod:`srl_swe.eval.shards`) write it through
:func:`totals`, so both give the same JSON for the same entries.

Each entry's ``status`` is one of :data:`srl_swe.swebench.verdicts.STATUSES`. ``infra_error`` (the environment
failed, not the model: see :mod:`srl_swe.swebench.verdicts`) is counted apart (``infra_errors``) and retried by
the next run of the same command. ``resolved_rate`` is resolved / ``total``, every instance of the run in the
denominator, infrastructure failures included, as swebench 5 keeps them in its own (its ``infra_failure_ids``
are advisory): a rate over the graded instances only would rise whenever the environment fails on a hard
instance. A run with ``infra_errors`` is not finished; rerun it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from srl_swe.swebench.prediction import Prediction
from srl_swe.swebench.verdicts import INFRA_ERROR


def agent_stats(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Agent-mode figures over the episodes that ran (``results.json``'s per-instance entries, or predictions'
    extra fields: ``steps``, ``valid_steps``, ``exit_status``): the share of steps that were valid tool calls (the
    rest broke the format), how episodes ended, and the mean steps of those that submitted. None without episodes."""
    runs = [r for r in entries if isinstance(r.get("steps"), int)]
    if not runs:
        return None
    steps = sum(r["steps"] for r in runs)
    submitted = [r["steps"] for r in runs if r.get("exit_status") == "submitted"]
    exits: dict[str, int] = {}
    for r in runs:
        exits[str(r.get("exit_status"))] = exits.get(str(r.get("exit_status")), 0) + 1
    return {"episodes": len(runs), "steps": steps,
            "valid_tool_call_rate": sum(r.get("valid_steps") or 0 for r in runs) / steps if steps else 0.0,
            "submitted_rate": len(submitted) / len(runs),
            "mean_steps_to_submit": sum(submitted) / len(submitted) if submitted else None,
            "mean_steps": steps / len(runs), "exit_status_counts": dict(sorted(exits.items()))}


def summarize(results: dict[str, Any], predictions: dict[str, Prediction],
              load_errors: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    for iid, err in load_errors.items():
        per[iid] = {"status": "error", "resolved": False, "error": err}
    for iid, res in results.items():
        r = res.to_dict()
        pred = predictions.get(iid)
        per[iid] = {"status": r["status"], "resolved": bool(r["resolved"]), "error": r.get("error"),
                    "exit_status": pred.exit_status if pred is not None else None,
                    "prediction_error": pred.error if pred is not None else None}
        if pred is not None and "steps" in pred.extra:
            per[iid].update(steps=pred.extra["steps"], valid_steps=pred.extra.get("valid_steps"))
    return totals(meta, per)


def totals(meta: dict[str, Any], per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summary of per-instance entries: ``meta``, the totals, agent figures, then the entries by key (how a
    run and a merge of its shards write ``results.json``)."""
    total = len(per)
    resolved = sum(v["resolved"] for v in per.values())
    counts: dict[str, int] = {}
    for v in per.values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    out = {**meta, "total": total, "resolved": resolved, "resolved_rate": resolved / total if total else 0.0,
           "infra_errors": counts.get(INFRA_ERROR, 0), "status_counts": dict(sorted(counts.items()))}
    agent = agent_stats(list(per.values()))
    if agent is not None:
        out["agent"] = agent
    return {**out, "instances": dict(sorted(per.items()))}


def table(summary: dict[str, Any]) -> str:
    lines = [f"{'instance':<48} {'status':<12} note", "-" * 80]
    for iid, v in summary["instances"].items():
        note = v.get("error") or v.get("prediction_error") or v.get("exit_status") or ""
        lines.append(f"{iid:<48} {v['status']:<12} {str(note).splitlines()[0][:60] if note else ''}")
    lines.append(f"resolved {summary['resolved']}/{summary['total']} = {100 * summary['resolved_rate']:.1f}%")
    if summary.get("infra_errors"):
        lines.append(f"{summary['infra_errors']} infrastructure failure(s), counted as not resolved: rerun the same "
                     "command to retry them")
    agent = summary.get("agent")
    if agent:
        to_submit = agent["mean_steps_to_submit"]
        lines.append(f"agent: {agent['episodes']} episodes, {agent['steps']} steps, valid tool calls "
                     f"{100 * agent['valid_tool_call_rate']:.1f}%, submitted {100 * agent['submitted_rate']:.1f}%, "
                     f"mean steps to submit {'-' if to_submit is None else f'{to_submit:.1f}'}")
    return "\n".join(lines) + "\n"
