"""The swebench harness, run with evaluation containers configured by srl-swe.

``python -m srl_swe.swebench.harness_sandbox -d DATASET -p PREDS -id RUN_ID [--max_workers N] [--timeout S]``
is ``python -m swebench.harness.run_evaluation`` with two functions of its module replaced, and nothing
else: the harness still loads the dataset and predictions, skips instances that have a report, applies
the patch with its fallback chain, writes and runs its eval script, parses the log with its log parser,
writes ``report.json`` and the run report, in its own log layout, with its own workers. ``--modal`` passes
the harness's Modal backend through, which uses neither function: there Modal's sandboxes grade.

Why: swebench 5.0.2 creates every evaluation container with ``cap_add=["SYS_ADMIN"]`` as root
(``run_evaluation.create_container``). The graded patch is model-written code (an added ``conftest.py``
runs during the tests), and on a cgroup v1 host without AppArmor CAP_SYS_ADMIN lets it mount a cgroup
hierarchy and have the host run its ``release_agent``. So:

* ``create_container`` makes the container with :func:`srl_swe.runtime.sandbox.create_sandbox` (no
  capabilities, ``no-new-privileges``, the image's non-root USER where it has one, no network, memory/CPU/
  process/disk limits, the srl-swe labels so ``cleanup_stale`` removes what a killed run leaves), and the
  harness's own commands (``git apply`` as ``root``) run as that user too; where the daemon has no disk
  quota, a monitor kills the container's processes once it outgrows its limit (the tests end there and
  the harness grades what they printed);
* ``exec_run_with_timeout`` keeps at most :data:`MAX_TEST_OUTPUT` bytes of the test log (head and tail)
  instead of the whole stream in host memory, and on a timeout kills the container's processes.

The limits come as :class:`~srl_swe.runtime.sandbox.SandboxLimits` JSON in ``SRL_SWE_SANDBOX``. The
process dies with its parent (``PR_SET_PDEATHSIG``, the parent's pid in ``SRL_SWE_PARENT_PID``), so a
``kill -9`` of srl-swe does not leave a harness grading on. Only swebench 5.x is accepted: the replaced
functions' signatures are checked first, and a mismatch stops with a message rather than grading in a
container nobody configured.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import inspect
import os
import signal
import sys
import threading
import time

MAX_TEST_OUTPUT = 16 * 1024 * 1024  # a full pytest -rA log fits; a patch printing gigabytes does not
_SIGNATURES = {"create_container": ["test_spec", "client", "run_id", "logger"],
               "exec_run_with_timeout": ["container", "cmd", "timeout"]}


def _die_with_parent() -> None:
    """SIGKILL this process when the srl-swe process that started it dies (Linux), and exit at once if it
    is already gone (it died between the fork and this call)."""
    parent = int(os.environ.get("SRL_SWE_PARENT_PID") or 0)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent and os.getppid() != parent:
        os._exit(1)


def check_harness(run_evaluation) -> None:
    """Refuse a swebench whose functions no longer look like the ones replaced here."""
    for name, params in _SIGNATURES.items():
        got = list(inspect.signature(getattr(run_evaluation, name)).parameters)
        if got != params:
            raise SystemExit(f"srl-swe's sandboxed harness supports swebench 5.x: run_evaluation.{name} takes {got}, "
                             f"expected {params}; install swebench>=5.0.2,<6")


def make_create_container(limits):
    """The harness's ``create_container`` with a container configured by srl-swe."""
    import docker.errors
    from swebench.harness.utils import EvaluationError

    from srl_swe.runtime.images import LABEL, OWNER_LABEL, owner_label
    from srl_swe.runtime.sandbox import DiskWatch, create_sandbox

    def create_container(test_spec, client, run_id, logger):
        name = f"sweb.eval.{test_spec.instance_id.lower()}.{run_id}"
        try:
            try:
                client.images.get(test_spec.image)
            except docker.errors.ImageNotFound:
                logger.info("Image not found locally, attempting to pull...")
                client.images.pull(test_spec.image)
            with contextlib.suppress(docker.errors.NotFound):  # left under this name by an earlier, killed run
                client.containers.get(name).remove(force=True)
            container, mode = create_sandbox(client, test_spec.image, limits, name=name, command="tail -f /dev/null",
                                             labels={LABEL: "1", OWNER_LABEL: owner_label()})
        except Exception as exc:
            raise EvaluationError(test_spec.instance_id, f"could not create the sandbox container: {exc}",
                                  logger) from exc
        user = container.attrs.get("Config", {}).get("User") or "root"
        # The harness passes user="root" to its git commands; they run as the sandbox's user instead.
        container.exec_run = functools.partial(_exec_as, container, user)
        logger.info(f"Container for {test_spec.instance_id} created by srl-swe: {container.id} (user {user}, "
                    f"no capabilities, network {limits.network or 'none'}, disk limit {limits.disk} by {mode})")
        if mode == "monitor":
            def stop(size: int) -> None:
                # Every process but PID 1: the test run ends and the harness goes on grading what it printed.
                logger.info(f"srl-swe: {name} wrote {size} bytes, over its disk limit of {limits.disk}; killed "
                            "its processes")
                container.exec_run(["sh", "-c", "kill -9 -1"])

            DiskWatch(client.api, container.id, limits.disk_bytes, stop, interval=limits.disk_poll)
        return container

    return create_container


def _exec_as(container, sandbox_user, cmd, **kwargs):
    from docker.models.containers import Container

    kwargs["user"] = sandbox_user
    return Container.exec_run(container, cmd, **kwargs)


def exec_run_with_timeout(container, cmd, timeout: int | None = 60):
    """The harness's function with bounded memory: (output, timed_out, seconds)."""
    from srl_swe.runtime.output import OutputBuffer

    buf, failure, exec_id = OutputBuffer(MAX_TEST_OUTPUT), [], None

    def pump() -> None:
        nonlocal exec_id
        try:
            exec_id = container.client.api.exec_create(container.id, cmd)["Id"]
            for chunk in container.client.api.exec_start(exec_id, stream=True):
                buf.feed(chunk)
        except Exception as exc:  # re-raised below, as the harness does
            failure.append(exc)

    start = time.time()
    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    thread.join(timeout)
    timed_out = thread.is_alive()
    if timed_out:
        container.kill()  # every process of the test run, at once; the harness removes the container next
        thread.join(10)
    elif failure:
        raise failure[0]
    return buf.text(), timed_out, time.time() - start


def main(argv: list[str] | None = None) -> None:
    _die_with_parent()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-d", "--dataset_name", required=True)
    parser.add_argument("-s", "--split", default="test")
    parser.add_argument("-p", "--predictions_path", required=True)
    parser.add_argument("-id", "--run_id", required=True)
    parser.add_argument("--max_workers", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--report_dir", default=".")
    parser.add_argument("--modal", action="store_true", help="grade on Modal (the harness's own backend)")
    args = parser.parse_args(argv)

    from swebench.harness import run_evaluation

    from srl_swe.runtime.sandbox import SandboxLimits

    check_harness(run_evaluation)
    limits = SandboxLimits.from_json(os.environ.get("SRL_SWE_SANDBOX") or "{}")
    run_evaluation.create_container = make_create_container(limits)
    run_evaluation.exec_run_with_timeout = exec_run_with_timeout
    run_evaluation.main(dataset_name=args.dataset_name, split=args.split, instance_ids=None,
                        predictions_path=args.predictions_path, max_workers=args.max_workers, open_file_limit=4096,
                        run_id=args.run_id, timeout=args.timeout, rewrite_reports=False, modal=args.modal,
                        report_dir=args.report_dir)


if __name__ == "__main__":
    main()
