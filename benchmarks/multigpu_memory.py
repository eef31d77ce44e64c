"""The per-GPU memory arithmetic of README "Multi-GPU training" (python3 benchmarks/multigpu_memory.py).

Qwen2.5-7B(-Instruct) and Qwen2.5-Coder-7B-Instruct share one shape: hidden 3584, MLP 18944, 28 layers, 28 query
and 4 key/value heads of 128, vocabulary 152064, untied embeddings. All sizes in GiB (2**30 bytes).
"""

H, MLP, L, KV, HD, V = 3584, 18944, 28, 4, 128, 152064
GIB = 2**30
LAYER = (H * H + H) + 2 * (H * KV * HD + KV * HD) + H * H + 3 * H * MLP + 2 * H  # q, k, v (biases), o, MLP, norms
P = L * LAYER + 2 * V * H + H  # + embeddings, LM head, final norm
GPU = 79.6  # H100 80 GB as torch sees it (81559 MiB)
VLLM = 0.3  # TRL's vllm_gpu_memory_utilization default, a share of the whole GPU
OVERHEAD = 3.0  # CUDA context, NCCL buffers, allocator fragmentation (a round guess)

# Activations per token of the micro-batch, bf16, HF gradient checkpointing (one checkpoint per decoder layer,
# SDPA/flash attention, so nothing quadratic in the length):
#   kept for the whole step: each layer's input, L * H * 2 bytes;
#   one layer recomputed in the backward: what it saves for its own backward (RMSNorm's fp32 input and output
#   x2, q/k/v, attention output, MLP input, gate, up, SiLU(gate), product) ~ 20H + 8I + 2048 bytes, plus the
#   gradients in flight, about as much again.
# TRL's fused LM head (Triton, on CUDA) never holds the (tokens x vocabulary) logits: 4096 x 32768 fp32 tiles.
CKPT_PER_TOKEN = L * H * 2
LAYER_PER_TOKEN = 2 * (20 * H + 8 * MLP + 2048)
LM_HEAD_TILES = 4096 * 32768 * 4 * 2 / GIB


def engine_state(engine: str, n: int) -> float:
    """Weights + gradients + optimizer states per GPU, and the engine's own buffers, GiB."""
    if engine == "ddp":  # bf16 model, pure bf16 Trainer: weights 2, grads 2, DDP buckets 2, AdamW m and v 2+2
        return 10 * P / GIB
    if engine == "zero2":  # bf16 weights everywhere; bf16 grad + fp32 master + Adam m, v sharded; 2 x 5e8 buckets
        return (2 * P + (2 + 4 + 8) * P / n) / GIB + 2 * 5e8 * 2 / GIB
    if engine == "zero3":  # all sharded (2 + 2 + 4 + 8 = 16 bytes/param); live params <= 1e9 (bf16), sub-group 1e9 fp32
        return 16 * P / n / GIB + (1e9 * 2 + 1e9 * 4) / GIB / 2
    if engine == "fsdp2":  # fp32 params, grads, Adam m, v sharded; 2 layers + root unit (embeddings, head)
        # unsharded bf16, one layer's fp32 reduce-scatter
        return (16 * P / n + (2 * LAYER + 2 * V * H) * 2 + LAYER * 4) / GIB
    raise ValueError(engine)


CONFIGS = {  # name: (tokens per sequence at the config's limits, config per-device batch, vLLM colocated?)
    "srl-math-qwen2.5-7b": (4096 + 2048, 8, True),
    "srl-swe-qwen2.5-coder-7b": (16384 + 2048, 8, True),
    "rlvr-math-qwen2.5-7b": (2048 + 8192, 8, True),
    "srl-then-rlvr-math-qwen2.5-7b": (2048 + 8192, 8, True),
    "rlvr-swe-qwen2.5-coder-7b": (2048 + 16384, 8, True),  # prompt: system + tools + issue, not bounded; ~2k
    "sft-swe-qwen2.5-coder-7b": (16384 + 2048, 4, False),
}


def activations(tokens: int, batch: int) -> float:
    return (batch * tokens * (CKPT_PER_TOKEN + LAYER_PER_TOKEN)) / GIB + LM_HEAD_TILES


def main() -> None:
    print(f"params {P / 1e9:.3f} B; bf16 weights {2 * P / GIB:.1f} GiB; vLLM share {VLLM * GPU:.1f} GiB of {GPU}")
    kv = 2 * L * KV * HD * 2
    print(f"vLLM KV cache {kv / 1024:.0f} KiB/token; {(VLLM * GPU - 2 * P / GIB - 1.5) * GIB / kv / 1000:.0f}k tokens "
          f"after weights and 1.5 GiB of graphs/activations")
    print(f"activations {(CKPT_PER_TOKEN + LAYER_PER_TOKEN) / 2**20:.2f} MiB/token of the micro-batch")
    for n in (8, 16):
        print(f"\n== {n} GPUs: engine state per GPU (GiB):",
              {e: round(engine_state(e, n), 1) for e in ("ddp", "zero2", "zero3", "fsdp2")})
    for name, (tokens, batch, vllm) in CONFIGS.items():
        print(f"\n{name}: {tokens} tokens/sequence")
        for b in sorted({batch, 4, 2, 1}, reverse=True):
            act = activations(tokens, b)
            row = []
            for e in ("ddp", "zero2", "zero3", "fsdp2"):
                total = engine_state(e, 8) + act + OVERHEAD + (VLLM * GPU if vllm else 0)
                row.append(f"{e} {total:5.1f}{'' if total <= GPU else ' (no)'}")
            print(f"  per-device {b}: activations {act:5.1f} GiB; total on 8 GPUs: " + ", ".join(row))


if __name__ == "__main__":
    main()
