#!/usr/bin/env bash
# GPU smoke check: one optimizer step of each paper config (configs/*qwen2.5*.yaml) at a reduced batch, rollouts
# from vLLM colocated with training; prints each config's peak GPU memory (nvidia-smi, vLLM included) and tokens/s,
# and exits 1 if any config failed (its log's tail is printed). Needs CUDA, the vllm extra and the 7B weights.
#
#   scripts/gpu_smoke.sh                          every paper config, on every visible GPU
#   scripts/gpu_smoke.sh srl-swe-qwen2.5-coder-7b  one (names as in configs/, without .yaml)
#   scripts/gpu_smoke.sh --dry-run                validate every config with its overrides and print the commands;
#                                                 no GPU, no model (tests/test_multigpu_configs.py runs this)
# Environment:
#   SMOKE_OUT=runs/gpu-smoke    run folders; final models are deleted after each config unless SMOKE_KEEP=1
#   SMOKE_ENGINE=deepspeed_zero3  configs/accelerate/ENGINE.yaml, used with 2 or more GPUs (fsdp2, deepspeed_zero2)
#   SMOKE_GPUS=N                processes to launch (default: the GPUs nvidia-smi lists; 8 in a dry run without it)
#   SMOKE_COMPLETION=512        max_completion_length of the GRPO configs (theirs go up to 16384; 'config' keeps it)
#   SMOKE_OVERRIDES="k=v ..."   appended to every config (e.g. model=/models/Qwen2.5-7B-Instruct, lora=true)
#   SMOKE_SWE_TASKS=PATH        SWE-bench instances for rlvr-swe (default: $SRL_SWE_DATA/local_tasks, Docker runtime)
# srl-then-rlvr starts from the final model of srl-math's smoke run, so run srl-math first (the default order).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="${SMOKE_OUT:-runs/gpu-smoke}"
ENGINE="${SMOKE_ENGINE:-deepspeed_zero3}"
COMPLETION="${SMOKE_COMPLETION:-512}"
SWE_TASKS="${SMOKE_SWE_TASKS:-${SRL_SWE_DATA:-../shared/data}/local_tasks}"
read -r -a EXTRA <<< "${SMOKE_OVERRIDES:-}"

DRY=0
NAMES=()
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) NAMES+=("${arg%.yaml}") ;;
    esac
done
[ ${#NAMES[@]} -gt 0 ] || NAMES=(srl-math-qwen2.5-7b srl-then-rlvr-math-qwen2.5-7b rlvr-math-qwen2.5-7b
                                 srl-swe-qwen2.5-coder-7b sft-swe-qwen2.5-coder-7b rlvr-swe-qwen2.5-coder-7b)

die() { echo "gpu_smoke: $*" >&2; exit 2; }
if [ -n "${SMOKE_GPUS:-}" ]; then
    GPUS="$SMOKE_GPUS"
elif command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    GPUS="$(nvidia-smi -L | wc -l)"
elif [ "$DRY" = 1 ]; then
    GPUS=8
else
    die "no CUDA GPU (nvidia-smi lists none); use --dry-run to check the configs on this machine"
fi

# The reduced batch: one group of 8 rollouts per process per optimizer step, in micro-batches of the size the
# multi-GPU commands use (the README's memory table), so a micro-batch's memory is the real run's. Held-out
# evaluation and checkpoints are off (a 7B checkpoint with its optimizer is ~100 GB); the bundled data replaces
# data the machine may not have.
overrides() {
    local name="$1"
    local o=(max_steps=1 "save_strategy='no'" eval_fraction=0 eval_data=null eval_steps=null step_eval=false
             "report_to=[]" logging_steps=1 "output_dir=$OUT/$name")
    case "$name" in
        sft-*) o+=(train_data=null per_device_train_batch_size=4 gradient_accumulation_steps=1) ;;
        *)
            o+=(use_vllm=true vllm_mode=colocate num_generations=8 generation_batch_size=null)
            [ "$COMPLETION" = config ] || o+=("max_completion_length=$COMPLETION")
            case "$name" in
                srl-math-*) o+=(train_data=null per_device_train_batch_size=4 gradient_accumulation_steps=2) ;;
                srl-swe-*) o+=(train_data=null per_device_train_batch_size=2 gradient_accumulation_steps=4) ;;
                rlvr-math-*) o+=(train_data=null per_device_train_batch_size=4 gradient_accumulation_steps=2) ;;
                srl-then-rlvr-*) o+=(train_data=null per_device_train_batch_size=4 gradient_accumulation_steps=2
                                     srl_output_dir=null "init_checkpoint=$OUT/srl-math-qwen2.5-7b/final") ;;
                rlvr-swe-*) o+=("train_data=$SWE_TASKS" per_device_train_batch_size=2 gradient_accumulation_steps=4
                                exec_max_steps=3) ;;
            esac ;;
    esac
    printf '%s\n' "${o[@]}" "${EXTRA[@]}"
}

# Validate every config with its overrides exactly as `srl-swe train` does before loading a model, in one Python
# (arguments: CONFIG OVERRIDE... -- CONFIG ...); one line per config, in order: its resolved keys as JSON, or
# "ERROR: why". All of them before any run, so a bad one costs no GPU time.
validate() {
    "$PY" - "$@" <<'EOF'
import itertools, json, sys
from srl_swe.train.config import ConfigError, load_config
keys = ("mode", "model", "per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "max_steps",
        "max_completion_length", "use_vllm", "vllm_mode", "save_strategy", "output_dir", "init_checkpoint", "lora")
for sep, group in itertools.groupby(sys.argv[1:], lambda a: a == "--"):
    if not sep:
        path, *overrides = group
        try:
            cfg = load_config(path, overrides)
        except ConfigError as e:
            print("ERROR: " + " ".join(str(e).split()))
            continue
        print(json.dumps({"config": path, **{k: getattr(cfg, k) for k in keys}}))
EOF
}

launcher() {
    if [ "$GPUS" -ge 2 ]; then
        printf '%s\n' "$PY" -m accelerate.commands.launch --config_file "configs/accelerate/$ENGINE.yaml" \
            --num_processes "$GPUS" --main_process_port 0 -m srl_swe.cli
    else
        printf '%s\n' "$PY" -m srl_swe.cli
    fi
}

# The largest memory.used (MiB) per GPU in an nvidia-smi sample log, and tokens/s from the run's metrics.
peak_memory() { awk -F', ' '{ if ($2 > m[$1]) m[$1] = $2 } END { for (g = 0; g in m; g++) printf "gpu%d %d MiB  ", g, m[g] }' "$1"; }
throughput() {
    "$PY" - "$1" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
tokens = max((r["num_tokens"] for r in rows if "num_tokens" in r), default=None)
runtime = next((r["train_runtime"] for r in rows if "train_runtime" in r), None)
if not tokens or not runtime or not any(r.get("step") == 1 and "loss" in r for r in rows):
    sys.exit(f"no logged optimizer step with its token count in {sys.argv[1]}")
length = next((r["completions/mean_length"] for r in rows if "completions/mean_length" in r), None)
print(f"{tokens / runtime:.0f} tokens/s ({tokens:.0f} tokens in {runtime:.1f} s"
      + (f", mean completion {length:.0f} tokens)" if length is not None else ")"))
EOF
}

[ -f "configs/accelerate/$ENGINE.yaml" ] || die "no configs/accelerate/$ENGINE.yaml (SMOKE_ENGINE)"
if [ "$DRY" = 0 ]; then
    command -v nvidia-smi >/dev/null || die "nvidia-smi not found: it samples the GPU memory"
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
fi
if [ "$GPUS" -lt 2 ] && [ "$DRY" = 0 ] && ! printf '%s\n' "${EXTRA[@]}" | grep -q '^lora='; then
    mib="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -dc 0-9)"
    if [ "$mib" -lt 120000 ]; then
        # one GPU, no sharding: bf16 weights, gradients, AdamW states and DDP-free buffers are 8 bytes/param,
        # 57 GiB for 7B, and the colocated vLLM takes 30 % of the GPU
        echo "gpu_smoke: 1 GPU of $mib MiB: full 7B fine-tuning next to vLLM does not fit; adding lora=true" >&2
        EXTRA+=(lora=true)
    fi
fi

declare -A RESULT
FAILED=0
mkdir -p "$OUT"
mapfile -t LAUNCH < <(launcher)
ARGS=()
for name in "${NAMES[@]}"; do
    [ -f "configs/$name.yaml" ] || die "configs/$name.yaml: no such config"
    case "$name" in
        srl-math-*|srl-swe-*|rlvr-math-*|srl-then-rlvr-*|rlvr-swe-*|sft-*) ;;
        *) die "$name: not a paper config this script knows (its reduced batch is set per config)" ;;
    esac
    mapfile -t ovr < <(overrides "$name")
    ARGS+=("configs/$name.yaml" "${ovr[@]}" --)
done
mapfile -t RESOLVED < <(validate "${ARGS[@]}")
[ ${#RESOLVED[@]} -eq ${#NAMES[@]} ] || die "validating the configs failed: ${RESOLVED[*]}"
for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}" cfg="configs/${NAMES[$i]}.yaml"
    if [[ "${RESOLVED[$i]}" == ERROR:* ]]; then
        echo "FAIL $name: config: ${RESOLVED[$i]#ERROR: }" >&2
        RESULT[$name]="FAIL (config)"; FAILED=1; continue
    fi
    echo "${RESOLVED[$i]}"
    mapfile -t ovr < <(overrides "$name")
    cmd=("${LAUNCH[@]}" train --config "$cfg" --no-plot "${ovr[@]}")
    echo "command: $(printf '%q ' "${cmd[@]}")"
    [ "$DRY" = 1 ] && { RESULT[$name]="ok (dry run)"; continue; }
    if [[ "$name" == rlvr-swe-* ]] && [ ! -e "$SWE_TASKS" ]; then
        echo "SKIP $name: no SWE-bench instances at $SWE_TASKS (set SMOKE_SWE_TASKS)" >&2
        RESULT[$name]="SKIPPED (no tasks)"; continue
    fi
    run_dir="$OUT/$name"
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 500 > "$run_dir/gpu_memory.csv" &
    sampler=$!
    start=$(date +%s)
    "${cmd[@]}" > "$run_dir/smoke.log" 2>&1
    rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    memory="$(peak_memory "$run_dir/gpu_memory.csv")"
    if [ "$rc" -ne 0 ] || ! speed="$(throughput "$run_dir/metrics.jsonl" 2>&1)"; then
        echo "FAIL $name (exit $rc, $(( $(date +%s) - start )) s); the end of $run_dir/smoke.log:" >&2
        tail -n 40 "$run_dir/smoke.log" >&2
        [ "$rc" -eq 0 ] && echo "$speed" >&2
        RESULT[$name]="FAIL (exit $rc) peak $memory"; FAILED=1
    else
        RESULT[$name]="ok $(( $(date +%s) - start )) s; $speed; peak $memory"
    fi
    echo "$name: ${RESULT[$name]}"
    # keep srl-math's final model for srl-then-rlvr (its start); the rest are 15-30 GB each
    [ "${SMOKE_KEEP:-0}" = 1 ] || [[ "$name" == srl-math-* ]] || rm -rf "$run_dir/final"
done

echo
echo "== gpu smoke: $GPUS GPU(s)$([ "$GPUS" -ge 2 ] && echo ", $ENGINE")"
for name in "${NAMES[@]}"; do printf '%-32s %s\n' "$name" "${RESULT[$name]:-not run}"; done
exit "$FAILED"
