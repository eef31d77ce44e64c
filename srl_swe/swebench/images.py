"""Task images for SWE-bench instances: reused when present, built locally from a spec when not.

An instance image is named as the harness expects (``swebench/sweb.eval.x86_64.<id>:latest``, see
:func:`srl_swe.swebench.specs.image_name`), so ``swebench.harness.run_evaluation`` finds it with
``images.get`` and never tries to pull. An image we built carries the label :data:`LABEL` = a hash of
everything that went into it (Dockerfile, base image id, source commit, wheels, spec): when any of them
changes the image is rebuilt, otherwise it is reused as is (about 50 ms). An image without the label
(an official one pulled from Docker Hub) is always used as is.

Builds use the classic builder (the Docker SDK's ``/build`` endpoint, i.e. ``DOCKER_BUILDKIT=0``: this
docker has no buildx) with host networking (apt needs the Debian mirror), under a file lock so parallel
workers build an image once. The build's output goes to ``$SRL_SWE_CACHE/logs/``; a failed build raises
:class:`ImageBuildError` naming that file. See ``docker/README.md``.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import string
import tempfile
import time
from pathlib import Path

from srl_swe.paths import cache_dir
from srl_swe.runtime.base import SandboxError
from srl_swe.runtime.hostgit import COMMIT_ENV
from srl_swe.swebench.local_env import prepare_source, prepare_wheelhouse, source_commit, task_base_message
from srl_swe.swebench.specs import EnvSpec, NoEnvironmentError, find_spec, image_name, setup_patch

LABEL = "org.srl-swe.build"
TEMPLATE = "task.Dockerfile.template"
_PKG = Path(__file__).resolve().parents[1]


class ImageBuildError(SandboxError):
    """``docker build`` of a task image failed; the message names the build log."""


def template_path() -> Path:
    """The Dockerfile template: inside a wheel (``srl_swe/_bundled/docker``) or the repo's ``docker/``."""
    for candidate in (_PKG / "_bundled" / "docker" / TEMPLATE, _PKG.parent / "docker" / TEMPLATE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{TEMPLATE} not found (looked in srl_swe/_bundled/docker and ./docker); reinstall srl-swe")


def render_dockerfile(spec: EnvSpec, base_image: str) -> str:
    return string.Template(template_path().read_text()).substitute(
        base_image=base_image, apt_packages=" ".join(spec.apt_packages), test_deps=" ".join(spec.test_deps),
        pythonpath=f" PYTHONPATH=/testbed/{spec.pythonpath}" if spec.pythonpath else "",
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class _Plan:
    """Everything one build needs: the Dockerfile, the build context (name -> a folder to copy or the bytes of a
    file), and the hash of it all that goes into the image label."""

    def __init__(self, spec: EnvSpec, client):
        from srl_swe.runtime.images import ensure_base_image

        base = ensure_base_image(client)
        self.spec = spec
        self.dockerfile = render_dockerfile(spec, base)
        self.source = prepare_source(spec)
        self.wheels = prepare_wheelhouse(spec, spec.python)
        self.context: dict[str, Path | bytes] = {"wheels": self.wheels, "testbed": self.source}
        parts = [self.dockerfile, client.images.get(base).id, source_commit(self.source), spec.digest(),
                 *sorted(p.name for p in self.wheels.iterdir())]
        self.key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


class _TaskPlan:
    """A generated task's image: its package's environment image with the task's bug committed in ``/testbed``
    exactly as :func:`~srl_swe.swebench.local_env.prepare_task_source` commits it, so ``HEAD`` is the record's
    ``base_commit`` (the build checks it). One small layer per task on one image per package version."""

    def __init__(self, spec: EnvSpec, patch: str, base_commit: str, client):
        env_tag = ensure_env_image(spec, client)
        message = task_base_message(spec, patch)  # of the patch as the record has it, as prepare_task_source does
        patch = patch if patch.endswith("\n") else patch + "\n"
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in COMMIT_ENV.items())
        self.spec = spec
        self.context = {"setup.diff": patch.encode("utf-8", "surrogateescape")}
        self.dockerfile = "\n".join([
            f"FROM {env_tag}",
            "COPY --chown=1000:1000 setup.diff /tmp/srl_swe_setup.diff",
            "RUN git apply --whitespace=nowarn /tmp/srl_swe_setup.diff && rm /tmp/srl_swe_setup.diff && git add -A"
            f" && {assigns} git -c core.autocrlf=false -c commit.gpgsign=false commit -q --no-verify"
            f" -m {shlex.quote(message)}"
            f' && test "$(git rev-parse HEAD)" = {shlex.quote(base_commit)}', ""])
        parts = [self.dockerfile, client.images.get(env_tag).id, patch]
        self.key = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]


def env_image_name(spec: EnvSpec) -> str:
    """The image of one package version's environment (clean source), shared by its generated tasks."""
    return f"srl-swe/env.{_safe(spec.package)}-{_safe(spec.package_version)}:{spec.digest()}".lower()


def ensure_env_image(spec: EnvSpec, client=None, rebuild: bool = False) -> str:
    """The environment image of ``spec`` (its clean source and test venv), built when missing or stale."""
    from srl_swe.runtime.images import docker_client

    client = client or docker_client()
    return _ensure(env_image_name(spec), lambda: _Plan(spec, client), client, rebuild)


def _ensure(tag: str, plan, client, rebuild: bool) -> str:
    from srl_swe.runtime.images import file_lock

    built = plan()
    if _label(client, tag) == built.key and not rebuild:
        return tag
    with file_lock("image-" + tag):
        if _label(client, tag) != built.key or rebuild:  # another worker may have built it meanwhile
            build_image(built, tag, client, nocache=rebuild)
    return tag


def _label(client, tag: str) -> str | None:
    """The image's build label; ``""`` for an image without one; ``None`` when there is no such image."""
    import docker.errors

    try:
        return (client.images.get(tag).labels or {}).get(LABEL, "")
    except docker.errors.ImageNotFound:
        return None


def ensure_image(instance, client=None, rebuild: bool = False) -> str:
    """The local image tag to run ``instance`` in, building it from the instance's spec when it is missing
    or was built from different inputs. ``rebuild=True`` rebuilds without the layer cache."""
    from srl_swe.runtime.images import docker_client

    client = client or docker_client()
    tag = instance.image or image_name(instance.instance_id)
    spec, patch = find_spec(instance), setup_patch(instance)
    label = _label(client, tag)
    if spec is None:
        if label is not None:
            return tag
        try:  # what the harness itself would do: the official images are on Docker Hub
            client.images.pull(tag)
            return tag
        except Exception as exc:  # no registry, no such image, auth: all mean "cannot get it that way"
            raise NoEnvironmentError(
                f"{instance.instance_id}: image {tag} is not available locally, pulling it failed "
                f"({type(exc).__name__}), and there is no build spec for {instance.repo} "
                f"{instance.version or '(no version)'}; add an EnvSpec to srl_swe.swebench.specs.SPECS"
            ) from None
    if label == "" and not rebuild:
        return tag  # someone else's image under the harness's name (e.g. the official one): use it
    if patch:
        return _ensure(tag, lambda: _TaskPlan(spec, patch, instance.base_commit, client), client, rebuild)
    return _ensure(tag, lambda: _Plan(spec, client), client, rebuild)


def build_image(plan: _Plan, tag: str, client, nocache: bool = False) -> Path:
    """Build ``tag`` from ``plan``; returns the build log's path, raises :class:`ImageBuildError`."""
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"build-{_safe(tag)}.log"
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="srl-swe-build-") as tmp, open(log_path, "w") as log:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(plan.dockerfile)
        for name, item in plan.context.items():
            if isinstance(item, bytes):
                (ctx / name).write_bytes(item)
            else:
                shutil.copytree(item, ctx / name, symlinks=True)
        log.write(f"# {tag} (build key {plan.key})\n{plan.dockerfile}\n")
        error = None
        try:
            stream = client.api.build(path=str(ctx), tag=tag, network_mode="host", rm=True, forcerm=True,
                                      decode=True, nocache=nocache, labels={LABEL: plan.key})
            for chunk in stream:
                if "stream" in chunk:
                    log.write(chunk["stream"])
                if "error" in chunk:
                    error = chunk["error"].strip()
                    log.write(f"ERROR: {error}\n")
        except Exception as exc:  # the daemon refused the build (bad context, daemon gone...)
            error = f"{type(exc).__name__}: {exc}"
            log.write(f"ERROR: {error}\n")
        log.write(f"# finished in {time.monotonic() - start:.1f} s\n")
    if error or _label(client, tag) != plan.key:
        raise ImageBuildError(f"building image {tag} for {plan.spec.repo} {plan.spec.version} failed: "
                              f"{error or 'no image with the expected label'}; full build log: {log_path}")
    return log_path
