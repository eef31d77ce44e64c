"""The results of benchmarks/bench_learning_swe.py: the paper's claims judged on resolved rate, and the Markdown
table. Not a benchmark: the underscore keeps it out of ``bench_*``."""

from __future__ import annotations

from typing import Any

METHODS = ("untrained", "sft", "srl", "rlvr", "srl_rlvr")
PROBES = ("qwen", "xml", "qwen+prefill", "xml+prefill")
CLAIMS = (("srl", ">", "sft"), ("srl_rlvr", ">=", "srl"), ("sft", ">", "untrained"), ("srl", ">", "untrained"),
          ("rlvr", ">", "untrained"), ("srl_rlvr", ">", "untrained"))


def claims(methods: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's claims on resolved rate; 'supported' only when the Wilson intervals do not overlap
    (for >=, when the first is not clearly below the second)."""
    out = []
    for a, op, b in CLAIMS:
        if a not in methods or b not in methods:
            continue
        ra, rb = methods[a]["agent"], methods[b]["agent"]
        (alo, ahi), (blo, bhi) = ra["wilson95"], rb["wilson95"]
        if op == ">":
            verdict = "supported" if alo > bhi else "contradicted" if ahi < blo else "not distinguishable"
        elif ahi < blo:
            verdict = "contradicted"
        else:  # both 0 (or a below b within noise) says nothing of a non-inferiority claim
            verdict = "supported" if ra["resolved_rate"] >= rb["resolved_rate"] > 0 else "not distinguishable"
        out.append({"claim": f"{a} {op} {b}", "a": ra["resolved_rate"], "b": rb["resolved_rate"], "verdict": verdict})
    return out


def _f(v: Any, pct: bool = False, nd: int = 3) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def markdown(res: dict[str, Any]) -> str:
    s, m = res["settings"], res["machine"]
    lines = [f"SWE learning benchmark: {s['model']}, {s['budget_minutes']:g} training wall-minutes per method on "
             f"{m['cpu_count']} CPUs, syntax {s['syntax']}, <think> {s.get('think', 'optional')}, "
             f"{s.get('tokens', 64)} tokens per reply; held-out toolz "
             f"tasks (functions never trained on) as agents: {s['max_steps']} tool calls, greedy, {s['runtime']} "
             f"sandboxes, graded by their tests ({s['backend']} generation). {m['date']}.", "",
             "| method | opt. steps | train wall s | train CPU s | resolved | Wilson 95% | valid calls | submitted | "
             "steps to submit | step reward greedy | sampled | format viol. |", "|---|---|---|---|---|---|---|---|---|"
             "---|---|---|"]
    for name in METHODS:
        if name not in res["methods"]:
            continue
        r = res["methods"][name]
        t, a, e = r.get("train") or {}, r["agent"], r["steps"]
        lo, hi = a["wilson95"]
        cells = [name, t.get("optimizer_steps", 0), f"{t.get('train_wall_s', 0):.0f}", f"{t.get('train_cpu_s', 0):.0f}",
                 f"{a['resolved']}/{a['tasks']}", f"[{100 * lo:.0f}%, {100 * hi:.0f}%]",
                 _f(a["valid_tool_call_rate"], True), _f(a["submitted_rate"], True),
                 _f(a["mean_steps_to_submit"], nd=1), f"{_f(e['greedy']['mean_reward'])} ± {_f(e['greedy_se'])}",
                 f"{_f((e['sampled'] or {}).get('mean_reward'))} ± {_f(e['sampled_se'])}",
                 _f(e["greedy"]["format_violation_rate"], True)]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    for n in sorted({n for r in res["methods"].values() for n in r.get("agent_longer", {})}, key=int):
        lines += ["", f"The same final models as agents with {n} tool calls per episode (greedy):", "",
                  "| method | resolved | Wilson 95% | valid calls | submitted | steps to submit | exits |",
                  "|---|---|---|---|---|---|---|"]
        for name in METHODS:
            a = res["methods"].get(name, {}).get("agent_longer", {}).get(n)
            if a:
                lo, hi = a["wilson95"]
                exits = ", ".join(f"{k} {v}" for k, v in sorted((a.get("exit_status_counts") or {}).items()))
                lines.append(f"| {name} | {a['resolved']}/{a['tasks']} | [{100 * lo:.0f}%, {100 * hi:.0f}%] | "
                             f"{_f(a['valid_tool_call_rate'], True)} of {a['steps']} | "
                             f"{_f(a['submitted_rate'], True)} | "
                             f"{_f(a['mean_steps_to_submit'], nd=1)} | {exits} |")
    if probe := res.get("syntax_probe"):
        lines += ["", f"Syntax probe, start model on {probe['examples']} train-split step prompts (not held-out): "
                  + "; ".join(f"{syn}: greedy {probe[syn]['greedy']['mean_reward']:+.3f} ("
                              f"{100 * probe[syn]['greedy']['format_violation_rate']:.0f}% broken), sampled "
                              f"{(probe[syn].get('sampled') or {}).get('mean_reward', float('nan')):+.3f}"
                              for syn in PROBES if syn in probe)]
    lines += ["", "| claim (resolved rate) | a | b | verdict |", "|---|---|---|---|"]
    lines += [f"| {c['claim']} | {_f(c['a'], True)} | {_f(c['b'], True)} | {c['verdict']} |"
              for c in res.get("claims", [])]
    for name, r in res["methods"].items():
        for k, st in enumerate((r.get("train") or {}).get("stages", [])):
            c = st["curve"]
            lines.append(f"* {name} stage {k} ({st['config']}): {st['optimizer_steps']} steps, training "
                         f"{st['curve_key']} {' '.join(f'{v:+.2f}' for v in c[:12])}{' ...' if len(c) > 12 else ''}")
    return "\n".join(lines)
