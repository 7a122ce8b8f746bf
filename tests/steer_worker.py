"""Steered decoding of 50 probe prompts in one process group (tests/test_distributed.py starts it
as one process or as two): WORKDIR OUT; the main process writes {schedule: outputs} to OUT."""
import json
import sys
from pathlib import Path

import torch

from memgen.distributed import is_main
from memgen.evaluate import Steerer
from memgen.families import BUILT_IN
from memgen.io import read_jsonl

workdir, out = Path(sys.argv[1]), Path(sys.argv[2])
gpt2 = BUILT_IN["gpt2"]
model, codec = gpt2.load_model(workdir / "models/gpt2/cipher/r0", torch.device("cpu"), None)
probes = read_jsonl(workdir / "data/tasks/cipher/probe.jsonl")[:50]
steerer = Steerer(model, codec, gpt2.all_site_modules(model), None, batch_size=8, max_new=12)
shifts = {layer: (torch.arange(0, 32, 2), 50.0 * torch.tensor([1.0, -1.0]).repeat(8)) for layer in range(2)}
outputs = {"unsteered": steerer.decode(probes)}
for schedule in ("every_step", "prompt_end"):
    outputs[schedule] = steerer.decode(probes, shifts, "resid_post", schedule)
if is_main():
    out.write_text(json.dumps(outputs))
