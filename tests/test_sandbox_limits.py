"""The sandbox cannot exhaust the host: files are read in bounded memory, writes stop at a disk limit.

The agent's tools read files from the container through ``read_file``, which streams and stops at
``MAX_FILE_BYTES``; a container's writable layer is capped by the storage driver's quota where the daemon
has one (btrfs, as scripts/start_dockerd.sh sets it up) and by the disk monitor elsewhere (tested on
every daemon by forcing it). Host memory is measured in a fresh process (peak RSS, ``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from srl_swe.runtime.base import MAX_FILE_BYTES
from srl_swe.runtime.docker import DockerRuntime
from srl_swe.runtime.images import ensure_base_image
from srl_swe.runtime.sandbox import SandboxLimits, quota_kind, quota_slack

MIB = 1 << 20
#: The documented cap on what one file read adds to the host process's peak memory: the file limit plus room
#: for the decoded text and the listing the editor builds from it.
READ_RSS_CAP = 4 * MAX_FILE_BYTES + 32 * MIB


@pytest.fixture(scope="module")
def image(docker_client) -> str:
    return ensure_base_image(docker_client)


_VIEW = textwrap.dedent("""
    import json, resource, sys
    from srl_swe.runtime.docker import DockerRuntime
    from srl_swe.schema import ToolCall
    from srl_swe.tools import ToolBox
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with DockerRuntime(sys.argv[1], timeout=60) as rt:
        assert rt.execute("truncate -s 1G /testbed/sparse && head -c 6000000 /dev/urandom | base64 > /testbed/big.txt "
                          "&& printf 'a\\\\nb\\\\n' > /testbed/small").ok
        box = ToolBox(rt)
        view = lambda p: box.run(ToolCall.make("str_replace_editor", command="view", path=p)).observation
        before = rss()
        huge = view("/testbed/sparse")
        after_huge = rss()
        big = view("/testbed/big.txt")  # just under the limit (about 8.1 MB of text): read whole
        after_big = rss()
        print(json.dumps({"before": before, "after_huge": after_huge, "after_big": after_big, "huge": huge,
                          "big": big[:200], "small": view("/testbed/small"), "next": rt.execute("echo ok").output}))
""")


@pytest.mark.slow
def test_a_1gb_sparse_file_is_refused_in_bounded_memory(image):
    proc = subprocess.run([sys.executable, "-c", _VIEW, image], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "/testbed/sparse is too large to open whole (1073741824 bytes" in got["huge"]
    assert "`head`" in got["huge"]
    assert got["after_huge"] - got["before"] < 16 * MIB  # nothing of the 1 GB was read
    assert got["after_big"] - got["before"] < READ_RSS_CAP
    assert got["big"].startswith("Here's the result of running `cat -n` on /testbed/big.txt")
    assert got["small"].endswith("     1\ta\n     2\tb\n     3\t\n")
    assert got["next"] == "ok\n"


def _write_3gb(rt: DockerRuntime) -> tuple[str, int]:
    res = rt.execute("dd if=/dev/zero of=/testbed/big bs=1M count=3072 2>&1; sync", timeout=120)
    size = int(rt.execute("stat -c %s /testbed/big").output.strip())
    return res.output, size


@pytest.mark.slow
def test_disk_quota_stops_a_3gb_write(image, docker_client):
    if quota_kind(docker_client, image) is None:
        reason = f"this daemon's storage driver ({docker_client.info()['Driver']}) has no quota"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; scripts/start_dockerd.sh should have put it on btrfs")
        pytest.skip(reason)
    with DockerRuntime(image, client=docker_client, disk="256m", timeout=60) as rt:
        assert rt.disk_mode == "quota"
        out, size = _write_3gb(rt)
        assert "Disk quota exceeded" in out or "No space left" in out
        image_size = docker_client.images.get(image).attrs["Size"]
        slack = quota_slack(image_size) if quota_kind(docker_client) == "image+layer" else 0
        assert 200 * MIB < size <= 256 * MIB + slack  # btrfs: the limit plus the slack for the image's metadata
        assert rt.execute("rm /testbed/big && head -c 1000000 /dev/zero > /testbed/after && echo ok").output == "ok\n"


@pytest.mark.slow
def test_disk_monitor_stops_a_3gb_write(image, docker_client):
    with DockerRuntime(image, client=docker_client, disk="256m", disk_mode="monitor", timeout=60) as rt:
        assert rt.disk_mode == "monitor"
        out, size = _write_3gb(rt)
        assert "grew past its disk limit of 268435456 bytes" in out
        # Stopped before the 3 GB asked for. How far past the limit depends on the write speed times the poll's
        # latency (a size query per 0.25 s): 2.07 GB once on an idle CI machine writing zeros to the page cache.
        # The monitor is best effort; the quota mode above is the hard limit.
        assert 256 * MIB < size < 3072 * MIB
        assert rt.disk_stops == 1
        # Deleting is not stopped, and the sandbox works on.
        assert rt.execute("rm /testbed/big && echo ok").output == "ok\n"
        assert rt.execute("head -c 1000000 /dev/zero > /testbed/after && echo ok").output == "ok\n"
        assert rt.disk_stops == 1


@pytest.mark.slow
@pytest.mark.shared_data
def test_graded_patch_that_fills_the_disk_is_stopped(local_tasks, docker_client, tmp_path):
    from srl_swe.swebench.datasets import load_instances
    from srl_swe.swebench.grading import grade_with_harness

    task = load_instances(local_tasks, ["marshmallow-code__marshmallow-1867"])[0]
    writer = ["import os", "def pytest_configure(config):", "    with open('/testbed/fill', 'wb') as f:",
              "        for _ in range(3072):", "            f.write(b'0' * (1 << 20))", "            f.flush()"]
    patch = (f"diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
             f"@@ -0,0 +1,{len(writer)} @@\n" + "".join(f"+{line}\n" for line in writer))
    pred = [{"instance_id": task.instance_id, "model_name_or_path": "filler", "model_patch": task.patch + patch}]
    limits = SandboxLimits(memory="2g", cpus=1.0, pids=512, disk="256m", disk_mode="monitor")
    result = grade_with_harness(pred, [task], run_id="fill-monitor", workdir=tmp_path, limits=limits)
    got = result[task.instance_id]
    assert (got.status, got.resolved) == ("unresolved", False)  # the tests never finished: nothing passed
    log = (tmp_path / "logs/run_evaluation/fill-monitor/filler" / task.instance_id / "run_instance.log").read_text()
    assert "over its disk limit of 256m; killed its processes" in log
    if quota_kind(docker_client, ensure_base_image(docker_client)) is not None:
        # The driver's quota: the write fails inside the container, the tests error out.
        limits = SandboxLimits(memory="2g", cpus=1.0, pids=512, disk="256m")
        result = grade_with_harness(pred, [task], run_id="fill-quota", workdir=tmp_path, limits=limits)
        assert (result[task.instance_id].status, result[task.instance_id].resolved) == ("unresolved", False)
        out = (tmp_path / "logs/run_evaluation/fill-quota/filler" / task.instance_id / "test_output.txt").read_text()
        assert "Disk quota exceeded" in out or "No space left" in out


def test_local_runtime_reads_are_bounded_too(tmp_path):
    import resource

    from srl_swe.runtime.local import LocalRuntime
    from srl_swe.schema import ToolCall
    from srl_swe.tools import ToolBox

    repo = tmp_path / "repo"
    repo.mkdir()
    with LocalRuntime(repo) as rt:
        assert rt.execute("truncate -s 1G sparse && mkfifo pipe && echo hi > small").ok
        box = ToolBox(rt)
        view = lambda p: box.run(ToolCall.make("str_replace_editor", command="view", path=p)).observation  # noqa: E731
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert "/testbed/sparse is too large to open whole (1073741824 bytes" in view("/testbed/sparse")
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before < 16 * MIB
        assert "not a regular file" in view("/testbed/pipe")  # returns at once: a FIFO is never opened
        assert view("/testbed/small").endswith("     1\thi\n     2\t\n")


@pytest.mark.slow
def test_limits_object_and_single_overrides(image, docker_client):
    """The graders pass one SandboxLimits; a keyword (here cpus, disk=None) overrides a single field of it."""
    limits = SandboxLimits(memory="256m", cpus=2.0, pids=64, disk="1g")
    with DockerRuntime(image, client=docker_client, limits=limits, cpus=0.5, disk=None) as rt:
        host = docker_client.api.inspect_container(rt.container_name)["HostConfig"]
        assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (256 * MIB, 500_000_000, 64)
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges:true"]
        assert rt.disk_mode is None and not host.get("StorageOpt")  # disk=None: no disk limit asked for
    with DockerRuntime(image, client=docker_client, limits=limits) as rt:
        assert rt.disk_mode in ("quota", "monitor") and rt.limits.disk_bytes == 1 << 30
