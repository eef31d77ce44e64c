"""A ``kill -9`` of srl-swe while the harness grades leaves nothing running and nothing that the next run
cannot sweep: the harness dies with it, its container is removed by ``cleanup_stale``, a rerun under the
same run id grades as if nothing had happened, and a harness left over from a killed run is stopped first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from srl_swe.runtime.base import pid_alive
from srl_swe.runtime.images import LABEL, cleanup_stale
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import _stop_stale_harness, grade_with_harness

M1867 = "marshmallow-code__marshmallow-1867"
SLOW_CONFTEST = ("diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
                 "@@ -0,0 +1,3 @@\n+import time\n+def pytest_configure(config):\n+    time.sleep(120)\n")
_GRADER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.grading import grade_with_harness
    task = load_instances(sys.argv[1], [sys.argv[2]])[0]
    pred = {"instance_id": task.instance_id, "model_name_or_path": "slow", "model_patch": task.patch + sys.argv[3]}
    grade_with_harness([pred], [task], run_id="killed", workdir=Path(sys.argv[4]), timeout=600)
""")


def _harness_pids(run_id: str) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"srl_swe.swebench.harness_sandbox" in cmd and run_id.encode() in cmd:
            pids.append(int(proc.name))
    return pids


def _eval_containers(client) -> list:
    return [c for c in client.containers.list(all=True) if c.name.startswith("sweb.eval.")]


@pytest.mark.slow
@pytest.mark.shared_data
def test_sigkill_during_grading_leaves_nothing_behind(local_tasks, docker_client, tmp_path):
    task = load_instances(local_tasks, [M1867])[0]
    cleanup_stale(docker_client)
    assert _eval_containers(docker_client) == []
    grader = subprocess.Popen([sys.executable, "-c", _GRADER, str(local_tasks), M1867, SLOW_CONFTEST, str(tmp_path)])
    try:
        deadline = time.monotonic() + 120
        while not _eval_containers(docker_client):  # the harness is grading: its container runs the slow tests
            assert time.monotonic() < deadline and grader.poll() is None, "the harness never started a container"
            time.sleep(0.5)
        (container,) = _eval_containers(docker_client)
        assert container.labels.get(LABEL) == "1"
        harness = _harness_pids("killed")
        assert harness
        grader.kill()
        grader.wait(10)
    finally:
        if grader.poll() is None:
            grader.kill()
    deadline = time.monotonic() + 10
    # PR_SET_PDEATHSIG: the harness dies with the process that started it. Waited for with cleanup_stale's own
    # predicate: a dying process loses its command line before it stops running, and until it has stopped,
    # cleanup_stale rightly leaves its container alone (it was a flaky wait on the command line before).
    while any(pid_alive(pid) for pid in harness):
        assert time.monotonic() < deadline, "the harness kept running after srl-swe was killed"
        time.sleep(0.2)
    assert container.name in cleanup_stale(docker_client)
    assert _eval_containers(docker_client) == []
    # The rerun under the same run id grades the instance (the killed one left no report).
    pred = {"instance_id": M1867, "model_name_or_path": "slow", "model_patch": task.patch}
    again = grade_with_harness([pred], [task], run_id="killed", workdir=tmp_path)
    assert again[M1867].status == "resolved"


def test_a_harness_left_by_a_killed_run_is_stopped_first(tmp_path):
    # A stand-in with the harness's module name on its command line, in its own process group, as started.
    stale = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "srl_swe.swebench.harness_sandbox"],
                             start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        pidfile = tmp_path / "run.harness.pid"
        pidfile.write_text(f"{other.pid}\n")
        _stop_stale_harness(pidfile)  # not a harness: left alone
        assert other.poll() is None
        pidfile.write_text(f"{stale.pid}\n")
        _stop_stale_harness(pidfile)
        assert stale.wait(5) == -signal.SIGKILL
        _stop_stale_harness(pidfile)  # already gone: nothing to do, no error
        (tmp_path / "junk.pid").write_text("not a pid")
        _stop_stale_harness(tmp_path / "junk.pid")
    finally:
        for p in (stale, other):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
