"""Run under ``accelerate launch --config_file configs/accelerate/ENGINE.yaml``: which engine accelerate gives an
``Accelerator`` built the way the Trainer builds it here (``cpu=True`` without CUDA, srl_swe.train.run's
``use_cpu``), and what it wraps a module in. Prints one ``ENGINE {json}`` line per process."""

from __future__ import annotations

import json
import os
import sys

import torch
from accelerate import Accelerator

acc = Accelerator(cpu=not torch.cuda.is_available())
model = acc.prepare(torch.nn.Linear(4, 4))
line = "ENGINE " + json.dumps({
    "rank": acc.process_index, "processes": acc.num_processes, "distributed_type": str(acc.distributed_type),
    "wrapper": type(model).__name__, "backend": acc.state.backend,
    "asked_for_fsdp": os.environ.get("ACCELERATE_USE_FSDP") == "true",
})
# One write of the whole line (print writes the text and the newline apart, so with the unbuffered stdout the
# launcher gives, the two ranks' lines could interleave: "ENGINE {...}ENGINE {...}"); under PIPE_BUF it is atomic.
sys.stdout.flush()
os.write(sys.stdout.fileno(), (line + "\n").encode())
acc.end_training()
