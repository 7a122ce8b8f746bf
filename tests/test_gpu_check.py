"""benchmarks/gpu_check.py without a GPU: its --quick CPU run gives every measurement it reports
(a positive finite number each) and its repro part passes on the data stages; its 3B shape is
Llama-3.2-3B's; a dvc repro that fails or runs out of time is reported as such; --device cuda on a
machine without CUDA is one line."""
import json
import math
import sys

import pytest
import torch

from tiny_repo import ROOT, run

sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check import LLAMA_3B, MEASURED, build_llama, repro_check  # noqa: E402  (after the path it is found on)

SCRIPT = str(ROOT / "benchmarks" / "gpu_check.py")


def test_quick_cpu_run_measures_everything(tmp_path):
    out = tmp_path / "gpu.json"
    # the repro part on the data stages only: the whole tiny profile takes ~10 minutes on 2 cores
    result = run(ROOT, sys.executable, SCRIPT, "--quick", "--device", "cpu", "--with-repro", "--repro-stage", "data",
                 "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = json.loads(out.read_text())
    assert json.loads(result.stdout.split("JSON summary:\n", 1)[1]) == summary  # printed and written alike
    assert summary["ok"] and summary["errors"] == {} and summary["mode"] == "quick"
    assert summary["environment"]["torch"] == torch.__version__ and summary["environment"]["device"] == "cpu"
    assert sorted(summary["models"]) == ["embedded", "small-llama-2-layer"]
    for name, measured in summary["models"].items():
        assert set(measured) == set(MEASURED), name
        for key, value in measured.items():
            assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, key, value)
        assert f"{measured['decode_prompts_per_s']:.1f} prompts/s" in result.stdout  # also a plain line
    assert summary["models"]["embedded"]["params_m"] == pytest.approx(134.5, abs=0.1)  # SmolLM2-135M
    repro = summary["repro"]
    assert repro["ok"] and repro["stages"] == ["data"] and repro["stage_runs"] == 3  # one per task
    assert "tiny profile dvc repro: PASS" in result.stdout


def test_the_3b_shape_is_llama_3_2_3b():
    model = build_llama(LLAMA_3B, torch.device("meta"), torch.bfloat16)  # shapes only, no memory
    assert sum(p.numel() for p in model.parameters()) == 3_212_749_824  # Llama-3.2-3B's count, embeddings tied


@pytest.mark.parametrize("stage, timeout, timed_out", [("no_such_stage", 120, False), ("data", 1, True)])
def test_a_failing_repro_is_reported(stage, timeout, timed_out):
    report = repro_check(torch.device("cpu"), stage, timeout)
    assert not report["ok"] and report["returncode"] != 0 and report["timed_out"] == timed_out
    assert "output_tail" in report
    if not timed_out:  # a stage that does not exist starts nothing (a timed-out one may have started)
        assert report["stages"] == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_one_line():
    result = run(ROOT, sys.executable, SCRIPT, "--device", "cuda", "--quick", timeout=120)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and "CUDA" in lines[0] and "Traceback" not in lines[0], lines
