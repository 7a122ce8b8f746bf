"""End to end: the real `dvc repro` on the tiny profile in a temporary git repo, then an
experiment that changes alpha, then a second run from scratch that must give the same bytes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

COPY = ["dvc.yaml", "stages", "src", ".dvc/config", ".dvcignore"]


def merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def sh(cwd, *args):
    # the venv's dvc and python, also when pytest was started without activating it
    env = {**os.environ, "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def make_repo(path, remote):
    path.mkdir()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, path / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()),
                   yaml.safe_load((ROOT / "tests" / "tiny_params.yaml").read_text()))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(path, "git", "init", "-q")
    sh(path, "git", "config", "user.name", "memgen test")  # commits here and in dvc exp, with no global config
    sh(path, "git", "config", "user.email", "test@memgen.invalid")
    sh(path, "dvc", "remote", "modify", "local", "url", str(remote))
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "tiny profile")
    return path


def lock_hashes(path):
    """Every out's md5 from dvc.lock, by path."""
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    return {out["path"]: out.get("md5") for stage in lock["stages"].values() for out in stage.get("outs", [])}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    path = make_repo(base / "a", base / "remote")
    sh(path, "dvc", "repro")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "tiny run")
    return path


def runs_of(path):
    params = yaml.safe_load((path / "params.yaml").read_text())["runs"]
    return [f"{f}/{t}/r{r}" for f in params["families"] for t in params["tasks"] for r in params["replicates"]]


def test_repro_produces_consistent_metrics(repo):
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert sorted(summary) == sorted(runs_of(repo))
    steered = 0
    for name, run in summary.items():
        probe, steer = run["probe"], run["steer"]
        assert abs(probe["mem"] + probe["gen"] + probe["other"] - 1) < 1e-9
        assert (repo / "data" / "runs" / name / "activations.safetensors").exists()
        assert (repo / "metrics" / "runs" / name / "nmd_heatmap.png").read_bytes()[:4] == b"\x89PNG"
        assert steer["n_pairs"] == probe["n_pairs"]
        if probe["n_pairs"] == 0:  # said plainly, not steered at random
            assert "no MEM/GEN pairs" in steer["skipped"]
            continue
        steered += 1
        n_mem = round(steer["unsteered"]["mem"] * steer["n_prompts"])
        assert steer["targeted"]["m2g"]["n"] == steer["random"]["m2g"]["n"] == n_mem
        for cond in ("targeted", "random"):
            for direction in ("m2g", "g2m"):
                r = steer[cond][direction]
                if r["n"]:
                    assert abs(r["success"] + r["other"] + r["unchanged"] - 1) < 1e-9
    assert steered >= 1, "the tiny profile should find pairs in at least one run"
    assert "| gpt2/cipher/r0 |" in (repo / "metrics" / "report.md").read_text()
    assert "up to date" in sh(repo, "dvc", "status")


def test_alpha_experiment_reruns_only_steering(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "alpha=5")
    ran = {line.split("'")[1].split("@")[0] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"steer", "report"}, out
    steer = json.loads((repo / "metrics" / "runs" / runs_of(repo)[0] / "steer.json").read_text())
    assert steer["alpha"] == 5
    diff = sh(repo, "dvc", "metrics", "diff", "--json")
    changed = json.loads(diff)
    assert any(v.get("alpha", {}).get("new") == 5 for v in changed.values()), diff


def test_same_params_give_identical_bytes(repo, tmp_path):
    other = make_repo(tmp_path / "b", tmp_path / "remote")
    sh(other, "dvc", "repro")
    sh(repo, "git", "checkout", "-q", "--", "params.yaml")  # undo the experiment's alpha in the workspace
    sh(repo, "dvc", "repro")
    assert lock_hashes(repo) == lock_hashes(other)


def test_push_then_pull_into_a_fresh_clone(repo, tmp_path):
    sh(repo, "dvc", "push", "--all-commits")  # whatever the workspace holds, the committed run is pushed
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull")
    status = sh(clone, "dvc", "status")
    assert "up to date" in status or "Data and pipelines are up to date" in status, status
