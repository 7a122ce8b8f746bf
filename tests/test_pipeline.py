"""End to end: the real `dvc repro` on the tiny profile in a temporary git repo, then
experiments that change alpha (one run directly, a queued sweep), a second run from scratch
that must give the same bytes, and sharing: push / fresh clone / pull through the local
default remote and a loopback S3 endpoint, and what a missing or unreachable remote does."""
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file, save_file

from memgen.behaviour import find_pairs, first_groups, groups_that_can_pair, run_probes, screen_routes
from memgen.families import get_family
from memgen.generate import first_tokens
from memgen.io import read_jsonl
from memgen.methods import METHODS
from memgen.pairs import read_pairs
from memgen.report import record_dict
from memgen.results import RECORDS, SCHEMA_VERSION, read_record
from memgen.params import Params
from memgen.run import Run
from memgen.errors import UserError
from memgen.experiment import NULL_NAMES, choose
from memgen.search import searches
from memgen.stats import exact_greater
from tiny_repo import make_repo, run, sh, stages_run

# Stages upstream of steering: a change of alpha must never re-run them.
UPSTREAM = {"data", "base_model", "train", "probe", "extract", "neurons", "predict", "train_multitask",
            "probe_multitask", "extract_multitask", "neurons_multitask", "plant", "probe_planted", "extract_planted",
            "neurons_planted"}
# A loopback S3 (moto) with dummy credentials; nothing is asked of any other host, and one
# attempt per request keeps an unreachable endpoint quick to fail.
S3_ENV = {"AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard", "AWS_EC2_METADATA_DISABLED": "true",
          "AWS_PROFILE": None, "AWS_DEFAULT_PROFILE": None,  # None: unset
          "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
BUCKET = "memgen"
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def lock_hashes(path):
    """Every out's md5 from dvc.lock, by path."""
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    return {out["path"]: out.get("md5") for stage in lock["stages"].values() for out in stage.get("outs", [])}


def remote_of(repo):
    return repo.parent / "remote"  # where make_repo pointed the default remote


def object_path(remote, md5):
    return remote / "files" / "md5" / md5[:2] / md5[2:]


def workspace(path):
    """sha256 of every file in a checkout, .git and .dvc aside."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*"))
            if f.is_file() and f.relative_to(path).parts[0] not in (".git", ".dvc")}


def assert_reproduces_nothing(path):
    status = sh(path, "dvc", "status")
    assert "up to date" in status, status
    repro = sh(path, "dvc", "repro")
    assert not stages_run(repro), repro
    assert "Data and pipelines are up to date" in repro, repro


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def add_s3_remote(path, endpoint, **options):
    """An S3 remote `s3` in .dvc/config.local (not committed), with dummy credentials."""
    sh(path, "dvc", "remote", "add", "--local", "-f", "s3", f"s3://{BUCKET}/cache")
    settings = {"endpointurl": endpoint, "region": "us-east-1",
                "access_key_id": "testing", "secret_access_key": "testing", **options}
    for key, value in settings.items():
        sh(path, "dvc", "remote", "modify", "--local", "s3", key, str(value))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    path = make_repo(base / "a", base / "remote")
    sh(path, "dvc", "repro")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "tiny run")
    return path


@pytest.fixture
def clone(repo, tmp_path):
    """A fresh git clone of the repo's last commit (whatever its workspace holds); removed after
    the test, since each pulled clone holds a copy of every model."""
    made = []

    def make(name="clone"):
        path = tmp_path / name
        sh(tmp_path, "git", "clone", "-q", str(repo), str(path))
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on a free loopback port with one empty bucket; its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request in the report
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    LOOPBACK.open(urllib.request.Request(f"{url}/{BUCKET}", method="PUT"), timeout=30)
    yield url
    # drop the stored objects (the models are hundreds of MB) before the thread stops
    LOOPBACK.open(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30)
    server.stop()


def runs_of(path):
    params = yaml.safe_load((path / "params.yaml").read_text())["runs"]
    return [f"{f}/{t}/r{r}" for f in params["families"] for t in params["tasks"] for r in params["replicates"]]


def planted_runs(path):
    params = yaml.safe_load((path / "params.yaml").read_text())
    rs = params["runs"]
    return [f"{f}/planted/r{r}/{t}" for f in rs["planted"] for t in params["plant"]["tasks"] for r in params["plant"]["draws"]]


def check_planted(repo, name, head, params):
    """A planted run: only the planted units' weights moved; the ranking scored against them; the arms steered."""
    files = run_metrics(repo, name)
    assert sorted(files) == ["localize", "neurons", "plant", "probe"]
    plant, loc = files["plant"], files["localize"]
    assert plant["weights_moved"] > 0 and plant["weights_moved_outside"] == 0
    p = params["plant"]
    assert plant["plant"]["content_steps"] == p["content_steps"] and plant["plant"]["chosen_step"] <= p["steps"]
    assert plant["rule_accuracy"]["prompts"] == p["rule_prompts"]
    assert all(0 <= plant["rule_accuracy"][m] <= 1 for m in ("rule_model", "planted"))
    assert plant["n_units"] == loc["n_planted"] == len(p["layers"]) * p["units_per_layer"]
    units = json.loads((repo / "models" / name / "planted_units.json").read_text())
    assert sorted(map(int, units["units"])) == p["layers"] and units["site"] == "mlp_hidden"
    assert loc["n_pairs"] == files["probe"]["n_pairs"] == head["pairs"]
    assert 0 <= loc["chance"]["recall"] <= loc["chance"]["recall_p95"] <= 1
    if loc["n_pairs"] == 0:
        assert "skipped" in loc and head["recall"] is None
        return False
    assert sorted(loc["scores"]) == ["abs_nmd", "abs_rho", "activations", "attribution", "discriminant", "grad_x_act",
                                     "hard_concrete", "integrated_gradients", "slimming", "zero_out"]
    deletion = loc["deletion"]  # each score's top k knocked out, the planted units, random sets of k
    assert deletion["k"] == loc["n_planted"] and sorted(deletion["arms"]) == sorted([*loc["scores"], "planted"])
    assert all(v is None or 0 <= v <= 1 for arm in deletion["arms"].values() for v in arm.values())
    assert [len(v) for v in deletion["random"].values()] == [params["localize"]["deletion_draws"]] * 2
    for score in loc["scores"].values():
        assert 0 <= score["recall"] <= 1 and 0 <= score["auroc"] <= 1
        assert score["recall_at"][str(loc["n_units"])] == 1.0  # every unit taken: every planted one found
        assert sum(score["top_k_by_layer"]) == loc["n_planted"]
    assert loc["planted_by_layer"] == [p["units_per_layer"] if layer in p["layers"] else 0
                                       for layer in range(len(loc["planted_by_layer"]))]
    assert head["recall"] == round(loc["scores"]["abs_rho"]["recall"], 4)
    for d in ("m2g", "g2m"):
        arms = loc["steering"][d]
        assert arms["oracle"]["n"] == arms["ranked"]["n"] == arms["random_neurons"]["n"]
        assert arms["random_neurons"]["draws"] == params["steer"]["null_draws"]
        assert sorted(arms["point"]) == ["oracle", "ranked"]
    for setting, dose in (("paper", params["steer"]["paper"]), ("oracle_point", None)):  # what each score found, steered
        for d, found in loc["found"][setting].items():
            point = loc["steering"][d]["point"]["oracle"] if dose is None else dose
            assert (found["point"]["schedule"], found["point"]["alpha"]) == (point["schedule"], point["alpha"])
            assert {*loc["scores"], "oracle", "random_neurons"} <= set(found)
            assert {found[a]["n"] for a in (*loc["scores"], "oracle", "random_neurons")} == {found["n"]}
            assert found["random_neurons"]["draws"] == params["steer"]["null_draws"]
            assert found["n"] == 0 or 0 <= found["power_10_points"] <= 1
    return True


def run_metrics(path, name):
    """One run's metric files: {file stem: its JSON}; the typed results read as the report reads them."""
    return {f.stem: record_dict(read_record(f, RECORDS[f.stem])) if f.stem in RECORDS else
            json.loads(f.read_text()) for f in (path / "metrics" / "runs" / name).glob("*.json")}


def wait_for_queue(path, names, timeout=1800):
    """`dvc queue start` returns at once: poll `dvc queue status` until every task is done."""
    deadline = time.monotonic() + timeout
    while True:
        table = sh(path, "dvc", "queue", "status")
        status = {fields[1]: fields[-1] for fields in map(str.split, table.splitlines())
                  if len(fields) >= 4 and fields[1] in names}
        if len(status) == len(names) and set(status.values()) <= {"Success", "Failed"}:
            return status
        assert time.monotonic() < deadline, f"the queue did not finish in {timeout} s:\n{table}"
        time.sleep(5)


def experiments(shown):
    """Every experiment record (rev, name, data) in `dvc exp show --json` output, at any depth."""
    if isinstance(shown, dict):
        if {"rev", "name", "data"} <= shown.keys():
            yield shown
        for value in shown.values():
            yield from experiments(value)
    elif isinstance(shown, list):
        for value in shown:
            yield from experiments(value)


def check_rates(r):
    """One rates dict: its shares add up and its counts and intervals agree."""
    if not r["n"]:
        return
    assert abs(r["success"] + r["other"] + r["unchanged"] - 1) < 1e-9
    assert r["k"] == round(r["success"] * r["n"]) and r["ci95"][0] <= r["success"] <= r["ci95"][1]
    assert r["route"] == pytest.approx(1 - r["unchanged"]) and r["route_k"] >= r["k"]


def check_null(null, targeted, draws):
    """A null beside a targeted steer: on its probes, drawn `draws` times, its empirical p as the draws say."""
    assert null["n"] == targeted["n"] and null["draws"] == len(null["success_draws"]) == draws
    if targeted["n"]:
        at_or_above = sum(x >= targeted["success"] for x in null["success_draws"])
        assert null["p_empirical"] == (1 + at_or_above) / (draws + 1)
        assert null["success"] == pytest.approx(sum(null["success_draws"]) / draws)
        assert null["can_fail"] in (True, False, None)


def check_steer(name, steer, search, neurons, params):
    """A steered run: every arm and null on the same probes, the rule applied to the val table, the curves."""
    above = any(site["n_above"] for site in neurons["sites"].values())
    assert steer["above_chance"] == above
    assert steer["searched"] == searches(params["families"][name.split("/")[0]]["steer"]["search"], above)
    n_test = steer["n_prompts"]["test"]
    settings = ("chosen", "paper", "paper_grid")  # ours, the paper's single setting, the authors' grid
    scopes = [s for s in params["steer"]["scopes"] if s != "all" and (s != "mlp_hidden" or s in neurons["sites"])]
    scoped = [f"{setting}_{scope}" for scope in scopes for setting in settings]
    assert sorted(steer["test"]) == sorted([*settings, *scoped])  # every scope the family maps, measured alike
    for setting in steer["test"]:
        for direction, source in (("m2g", "mem"), ("g2m", "gen")):
            tests = steer["test"][setting][direction]
            assert tests["targeted"]["n"] == round(steer["unsteered"]["test"][source] * n_test)
            targeted = tests["targeted"]
            check_rates(targeted)
            assert targeted["changed"] >= targeted["route_k"]  # leaving the source behaviour changes the output
            nulls = NULL_NAMES if setting in settings else [n for n in NULL_NAMES if n != "authors_baseline"]
            assert sorted(tests) == sorted(["targeted", *nulls])
            for null in nulls:  # every null on the same probes as the targeted steer
                check_null(tests[null], targeted, steer["draws"])
    if not steer["searched"]:
        assert steer["test"]["chosen"] == steer["test"]["paper"] == steer["test"]["paper_grid"]
        assert steer["dose_response"]["m2g"] is None
        return
    grid = params["steer"]["paper_grid"]
    for direction in ("m2g", "g2m"):  # the authors' grid: the paper's schedule, site and vector; the rule on val
        rows, chosen = search["paper_grid"][direction], steer["paper_grid_point"][direction]
        assert len(rows) == len(grid["topN"]) * len(grid["alpha"])
        assert all({k: r[k] for k in ("schedule", "vector", "site")} == {k: steer["paper_point"][k] for k in
                                                                        ("schedule", "vector", "site")} for r in rows)
        assert (chosen["val"], chosen["within_other"]) == choose(rows, params["steer"]["max_other"]), name
        if chosen["point"] == steer["paper_point"]:  # the grid chose the single setting: one measurement serves
            assert steer["test"]["paper_grid"][direction] == steer["test"]["paper"][direction]
    for direction in ("m2g", "g2m"):
        chosen = steer["operating_point"][direction]
        rows = search[direction]
        assert len(rows) == np.prod([len(v) if isinstance(v, list) else 1
                                     for v in (params[k] for k in ("schedule", "site", "vector", "topN", "alpha"))])
        best, within = choose(rows, params["steer"]["max_other"])  # the rule, applied again to the val table
        assert (chosen["val"], chosen["within_other"]) == (best, within), name
        if best is None:  # no val probe shows the source behaviour: the paper's setting
            assert chosen["point"] == steer["paper_point"]
        else:
            assert {k: best[k] for k in chosen["point"]} == chosen["point"]
        curve = steer["dose_response"][direction]
        assert [row["alpha"] for row in curve] == params["steer"]["alpha_ladder"]
        if steer["test"]["chosen"][direction]["targeted"]["n"]:
            moved = [row["moved"] for row in curve]
            assert moved == sorted(moved) and all(row["success"] <= row["moved"] for row in curve)


def check_methods(name, methods, steer, params, n_layers):
    """The methods side by side: each chosen by the rule from its own val rows, all on the steer stage's test
    probes, the paper's setting giving the steer stage's own result, the exact tests as stated."""
    for d in ("m2g", "g2m"):
        test, val = methods["test"][d], methods["val"][d]
        paper = steer["test"]["paper"][d]["targeted"]
        assert (test["paper"]["k"], test["paper"]["n"]) == (paper["k"], paper["n"]), name
        assert test["paper"]["point"] == steer["paper_point"]
        for method in METHODS:
            r = test[method]
            check_rates(r)
            rows = [row for row in val if row["method"] == method]
            assert rows and all(row["n"] == rows[0]["n"] for row in rows)
            best, within = choose(rows, params["steer"]["max_other"])
            assert r["val"] == best and r["within_other"] == within, (name, d, method)
            if best is None:  # no val probe to choose by: not measured
                assert r["candidate"] is None and r["n"] == 0
                continue
            assert r["n"] == paper["n"] and r["candidate"] == {k: best[k] for k in r["candidate"]}
            nmd = test["nmd"]
            if method != "nmd":
                assert r["p_above_nmd"] == exact_greater(r["k"], r["n"], nmd["k"], nmd["n"])
            check_null(r["nulls"]["random_direction"], r, methods["draws"])
    assert set(methods["budget"]) == set(METHODS)
    for scope, tests in methods["scopes"].items():  # each method searched again within each scope, on the same probes
        assert scope in params["steer"]["scopes"] and scope != "all"
        for d, test in tests.items():
            for method in METHODS:
                r = test[method]
                assert r["n"] == methods["test"][d][method]["n"] or r["candidate"] is None, (name, scope, method)
                if r["candidate"] and r["candidate"]["layer"] is not None and scope == "before_readout":
                    assert r["candidate"]["layer"] < n_layers - 1


def test_repro_produces_consistent_metrics(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    runs = {name: run_metrics(repo, name) for name in runs_of(repo)}
    assert all(sorted(run) == ["methods", "neurons", "predict", "probe", "search", "steer", "train"]
               for run in runs.values())
    for task in params["runs"]["tasks"]:  # the held-out splits
        data = json.loads((repo / "metrics" / "data" / f"{task}.json").read_text())
        assert data["holdout_unit"] in data["overlap"] and "prompt" in data["overlap"]
        assert all(len(counts) == 6 and set(counts.values()) == {0} for counts in data["overlap"].values())
    steered = searched = 0
    for name, files in runs.items():
        probe, steer, predict, neurons = files["probe"], files["steer"], files["predict"], files["neurons"]
        assert abs(probe["mem"] + probe["gen"] + probe["other"] - 1) < 1e-9
        screen = params["families"][name.split("/")[0]]["probe"]["screen"]
        assert ("screen" in probe) == screen
        if screen:  # greedy decoding writes the screened first token: it never disagrees, never misses a pair
            assert probe["screen"]["pairs_missed"] == 0 and probe["screen"]["routes_agree"] in (None, 1.0)
            assert f"{name}: the route screen read" in (repo / "metrics" / "report.md").read_text()
        assert (repo / "data" / "runs" / name / "activations.safetensors").exists()
        heatmap = repo / "metrics" / "plots" / "nmd_heatmap" / f"{name.replace('/', '-')}.png"
        assert heatmap.read_bytes()[:4] == b"\x89PNG"
        assert steer["n_pairs"] == probe["n_pairs"] == predict["n_pairs"] == neurons["n_pairs"]
        assert sorted(neurons["sites"]) == sorted(get_family(Params(params), name.split("/")[0]).sites)
        if probe["n_pairs"] == 0:  # said plainly, not steered at random
            assert "no MEM/GEN pairs" in steer["skipped"]
            continue
        steered += 1
        searched += steer["searched"]
        assert all(site["n_permutations"] == params["neurons"]["n_permutations"] for site in neurons["sites"].values())
        check_steer(name, steer, files["search"], neurons, params)
        check_methods(name, files["methods"], steer, params, neurons["layers"])
        if "skipped" not in predict:
            assert sorted(predict["by_layer"]) == sorted(neurons["sites"])
            assert all(len(acc) == len(steer["layers"]) for acc in predict["by_layer"].values())
    assert steered >= 1, "the tiny profile should find pairs in at least one run"
    assert searched >= 1, "the tiny profile searches on val (search: always) wherever it found pairs"

    # the comparison stages: every ordered pair, and a diagonal that repeats the run's own steer
    rs = params["runs"]
    for family in rs["families"]:
        for task in rs["tasks"]:
            intra = json.loads((repo / "metrics" / "intra" / family / f"{task}.json").read_text())
            assert intra["runs"] == [f"r{r}" for r in rs["replicates"]]
            assert intra["schema"] == {"kind": "comparison", "version": SCHEMA_VERSION}  # every results file says its shape
            for rep in rs["replicates"]:
                own = runs[f"{family}/{task}/r{rep}"]["steer"]
                for direction in ("m2g", "g2m"):
                    cell = intra["paper"][direction][f"r{rep}"][f"r{rep}"]
                    if "skipped" not in own:
                        mine = own["test"]["paper"][direction]["targeted"]
                        assert (cell["k"], cell["n"]) == (mine["k"], mine["n"])
                    chosen = intra["chosen"][direction][f"r{rep}"][f"r{rep}"]
                    if "skipped" not in own and not own["searched"]:
                        assert "ranking at chance" in chosen["skipped"]
                    elif "skipped" not in own:  # the diagonal at the run's own chosen point is its steer stage's
                        mine = own["test"]["chosen"][direction]["targeted"]
                        assert (chosen["k"], chosen["n"]) == (mine["k"], mine["n"])
                        ratio = intra["chosen"]["ratio"][direction][f"r{rep}"][f"r{rep}"]
                        assert ratio["ratio"] == (1.0 if mine["k"] else None)
                        control = intra["chosen"]["control"][direction][f"r{rep}"]
                        assert control["draws"] == params["compare"]["null_draws"] and control["n"] == mine["n"]
                    # within each scope the run's own steer measured too, the diagonal repeats it there
                    if "skipped" not in own:
                        scoped = sorted(s.removeprefix("paper_") for s in own["test"] if s.startswith("paper_")
                                        and s != "paper_grid" and not s.startswith("paper_grid_"))
                        assert sorted(intra["scopes"]) == scoped and scoped, name
                        for scope in scoped:
                            cell = intra["scopes"][scope]["paper"][direction][f"r{rep}"][f"r{rep}"]
                            mine = own["test"][f"paper_{scope}"][direction]["targeted"]
                            assert (cell["k"], cell["n"]) == (mine["k"], mine["n"]), (family, task, scope)
        for rep in rs["replicates"]:
            inter = json.loads((repo / "metrics" / "inter" / family / f"r{rep}.json").read_text())
            for setting in ("paper", "chosen"):
                assert sorted(inter[setting]["m2g"]) == sorted(rs["tasks"]) and all(
                    sorted(row) == sorted(rs["tasks"]) for row in inter[setting]["g2m"].values())
            if family in rs["multitask"]:
                assert inter["model"] == "one model trained on every task"
                assert (repo / "models" / family / "multitask" / f"r{rep}" / "model.safetensors").exists()
    report = (repo / "metrics" / "report.md").read_text()
    for heading in ("Held-out splits", "chance level", "The operating point, chosen on val", "Against the paper",
                    "The paper's setting against the controls", "Outputs that broke to OTHER"):
        assert heading in report, heading
    assert "| gpt2/cipher/r0 |" in report
    assert report.startswith("# memgen report") and "![targeted vs controls at the val-chosen point]" \
        "(figures/controls_chosen.png)" in report
    html = (repo / "metrics" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "<details>" in html
    assert 'src="data:image/png;base64,' in html and 'src="figures/' not in html  # works moved alone
    assert (repo / "metrics" / "figures" / "controls_chosen.png").read_bytes()[:4] == b"\x89PNG"
    headline = json.loads((repo / "metrics" / "headline.json").read_text())
    family_tasks = sorted({name.rsplit("/", 1)[0] for name in runs})
    comparisons = [f"intra/{f}/{t}" for f in rs["families"] for t in rs["tasks"]] + \
        [f"inter/{f}/r{r}" for f in rs["families"] for r in rs["replicates"]]
    assert sorted(headline) == sorted([*runs, *planted_runs(repo), *family_tasks, *comparisons])
    for name in comparisons:
        assert sorted(headline[name]) == ["chosen", "paper"] and all(
            sorted(headline[name][s][d]) == ["above_control", "evaluable", "ratio"] for s in ("chosen", "paper")
            for d in ("m2g", "g2m"))
    for name in family_tasks:  # the across-seed estimate: one seed here, its interval from the probe groups
        seeds = headline[name]
        assert seeds["seeds"] <= len(params["runs"]["replicates"]) and sorted(seeds) == ["g2m", "m2g", "seeds"]
        for d in ("m2g", "g2m"):
            chosen = seeds[d]
            assert chosen["chosen"] is None or chosen["chosen_lo"] <= chosen["chosen"] <= chosen["chosen_hi"]
    planted_with_pairs = sum(check_planted(repo, name, headline[name], params) for name in planted_runs(repo))
    assert planted_with_pairs >= 1, "the tiny profile's planted cipher model should show pairs"
    assert "Ground truth: memories planted in known units" in report
    for name, h in ((n, h) for n, h in headline.items() if n in runs):
        assert h["pairs"] == runs[name]["probe"]["n_pairs"]
        assert sorted(h) == ["g2m", "m2g", "max_abs_rho", "null_p95", "pairs"]
        assert all(sorted(h[d]) == ["by_method", "chosen", "chosen_hi", "chosen_lo", "other", "paper"]
                   for d in ("m2g", "g2m"))
        if "skipped" not in runs[name]["methods"]:
            probe = runs[name]["methods"]["test"]["g2m"]["linear_probe"]["success"]  # None: no test probe to move
            assert h["g2m"]["by_method"]["linear_probe"] == (None if probe is None else round(probe, 4))
        if "skipped" not in runs[name]["steer"]:
            targeted = runs[name]["steer"]["test"]["chosen"]["m2g"]["targeted"]
            assert h["m2g"]["chosen"] == (None if targeted["success"] is None else round(targeted["success"], 4))
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert sorted(summary) == ["evidence", "replicates"] and sorted(summary["evidence"]) == sorted(runs)
    assert "up to date" in sh(repo, "dvc", "status")


def searched_run(repo):
    return next(n for n in runs_of(repo) if run_metrics(repo, n)["steer"].get("searched"))


def test_every_adapter_was_trained_on_the_one_shared_base(repo, tmp_path, monkeypatch):
    from memgen.families.adapters import BASE_FILE, base_sha256, load_adapter
    from memgen.families.base import sha256_of

    rs = yaml.safe_load((repo / "params.yaml").read_text())["runs"]
    for family in ("gpt2_shared", "llama"):
        base = repo / "models" / family / "base"
        weights = sorted(base.glob("*.safetensors"))
        assert len(weights) == 1 and base_sha256(base) == sha256_of(weights)
        recorded = [json.loads((repo / "models" / family / t / f"r{r}" / BASE_FILE).read_text())["sha256"]
                    for t in rs["tasks"] for r in rs["replicates"]]
        assert recorded == [sha256_of(weights)] * len(rs["tasks"]) * len(rs["replicates"])
    # an adapter refuses a base other than its own: here the shared base with one weight changed
    monkeypatch.chdir(repo)
    params = Params(yaml.safe_load((repo / "params.yaml").read_text()))
    family = get_family(params, "gpt2_shared")
    fp = params.section("families").section("gpt2_shared")
    other = tmp_path / "other_base"
    shutil.copytree(repo / "models" / "gpt2_shared" / "base", other)
    weights = load_file(other / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    adapter = repo / "models" / "gpt2_shared" / "cipher" / "r0"
    assert load_adapter(family.load_base(fp)[0], adapter, repo / "models" / "gpt2_shared" / "base") is not None
    with pytest.raises(UserError, match="trained on another base"):
        load_adapter(family.load_base(fp)[0], adapter, other)


def test_the_route_screen_agrees_with_full_decoding(repo, monkeypatch):
    """On every gpt2 run of the tiny profile (probed in full): each prompt decoded MEM or GEN was screened
    to that route from its first token, every pair lies in a group the screen keeps, and decoding only the
    kept groups finds the same pairs as the probe stage."""
    monkeypatch.chdir(repo)
    kept_groups = all_groups = 0
    for task in ("arithmetic", "cipher", "incontext"):
        run = Run.open("gpt2", task, 0)
        probes = first_groups(read_jsonl(run.data_dir / "probe.jsonl"), 200)
        model, codec = run.load_model()
        routes = screen_routes(codec, run.task, probes, first_tokens(model, codec, [p["prompt"] for p in probes], 64))
        _, labels = run_probes(model, codec, run.task, probes, 100)
        told = [(route, label) for route, label in zip(routes, labels) if label != "OTHER"]
        assert told and all(route == label for route, label in told), task
        can_pair = groups_that_can_pair(probes, routes)
        kept = [p for p in probes if p["group"] in can_pair]
        kept_labels = run_probes(model, codec, run.task, kept, 100)[1] if kept else []  # none kept: no pair either
        pairs = [[probes[m]["prompt"], probes[g]["prompt"]] for m, g in find_pairs(probes, labels)]
        assert pairs == read_pairs(run.run_dir / "pairs.json"), task
        assert [[kept[m]["prompt"], kept[g]["prompt"]] for m, g in find_pairs(kept, kept_labels)] == pairs, task
        kept_groups, all_groups = kept_groups + len(can_pair), all_groups + len({p["group"] for p in probes})
    assert kept_groups < all_groups  # the screen spares some decoding


def test_memgen_steer_cli(repo):
    family, task, rep = searched_run(repo).split("/")
    wide = {"COLUMNS": "400"}  # rich wraps a table to 80 columns off a terminal; keep each header on one line
    out = sh(repo, "memgen", "steer", family, task, "--rep", rep[1:], "--test", "2", "--alpha", "4", env=wide)
    assert "unsteered" in out and "to GEN" in out and "to MEM" in out and "alpha 4" in out
    paper = sh(repo, "memgen", "steer", family, task, "--rep", rep[1:], "--test", "1", "--paper", "--direction", "m2g",
               env=wide)
    assert "every_step" in paper and "to MEM" not in paper
    bad = run(repo, "memgen", "steer", family, task, "--topN", "2")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith(
        "error: Invalid value for '--topN': must be a fraction in (0, 1], got '2'")


def test_the_chosen_point_reads_val_only(repo):
    """Swapping the answers of every test probe changes every test outcome and nothing of the chosen point."""
    name = searched_run(repo)
    family, task, rep = name.split("/")
    test_file = repo / "data" / "tasks" / task / "test.jsonl"
    outputs = [repo / "metrics" / "runs" / name / f for f in ("steer.json", "search.json")] + \
        [repo / "data" / "runs" / name / "steer_outputs.jsonl"] + \
        [repo / "metrics" / "plots" / kind / f"{name.replace('/', '-')}.csv" for kind in ("dose_response", "steer_layers")]
    kept = {path: path.read_bytes() for path in [test_file, *outputs]}
    before = json.loads(kept[outputs[0]])
    rows = [json.loads(line) for line in kept[test_file].decode().splitlines()]
    swapped = "".join(json.dumps({**r, "mem": r["gen"], "gen": r["mem"]}) + "\n" for r in rows)
    try:
        swap_in = test_file.with_name(test_file.name + ".swapped")  # a new file: the DVC cache's copy is untouched
        swap_in.write_text(swapped)
        os.replace(swap_in, test_file)
        sh(repo, sys.executable, "stages/steer.py", family, task, rep[1:])
        after = json.loads(outputs[0].read_text())
    finally:
        for path, data in kept.items():
            tmp = path.with_name(path.name + ".restore")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    assert after["operating_point"] == before["operating_point"]
    assert after["unsteered"]["val"] == before["unsteered"]["val"]
    assert after["unsteered"]["test"]["mem"] == before["unsteered"]["test"]["gen"]  # the test outcomes did change
    assert "up to date" in sh(repo, "dvc", "status")


def test_intervention_experiment_reruns_only_steering(repo):
    """-S on the intervention's knobs fixes them: the search runs over what is left, nothing upstream re-runs
    (the comparison stages read the runs' folders, which hold the steer outputs, so they may)."""
    out = sh(repo, "dvc", "exp", "run", "-S", "alpha=5", "-S", "schedule=prompt_end", "-S", "vector=discriminant")
    ran = stages_run(out)
    assert {"steer", "report"} <= ran and not ran & UPSTREAM, out
    steer = json.loads((repo / "metrics" / "runs" / searched_run(repo) / "steer.json").read_text())
    # directions with val probes to choose by (without any, a direction falls back to the paper's setting)
    points = [op["point"] for op in steer["operating_point"].values() if op["val"]]
    assert points and {(p["alpha"], p["schedule"], p["vector"]) for p in points} == {(5, "prompt_end", "discriminant")}
    # the headline is the only metrics file: the diff and the table of experiments fit a screen
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json"))
    assert [list(rev["data"]) for rev in shown.values()] == [["metrics/headline.json"]], shown
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json"))  # empty where no headline number moved
    assert set(diff) <= {"metrics/headline.json"} and all(".m2g." in k or ".g2m." in k for k in diff.get(
        "metrics/headline.json", {})), diff  # the steer's numbers, nothing upstream
    assert len(sh(repo, "dvc", "metrics", "diff").splitlines()) <= 80
    header = sh(repo, "dvc", "exp", "show", "--csv", "--only-changed").splitlines()[0].split(",")
    assert len(header) <= 80 and "alpha" in header, header


# The second run makes one family's run of one task (every per-run stage, the planted ones included; not
# the multitask model, which would learn other tasks): the same params for each run it shares with the
# first, in a fraction of the first run's time, and under a competing CPU-bound process.
SECOND_RUN = {"runs": {"families": ["gpt2"], "tasks": ["cipher"], "multitask": []}}


def test_same_params_give_identical_bytes(repo, tmp_path):
    other = make_repo(tmp_path / "b", tmp_path / "remote", SECOND_RUN)
    # a busy loop at the lowest priority: it takes whatever CPU the stages leave, so their threads meet a
    # busy machine without the test taking twice as long (a full-priority loop made it 512 s instead of 208)
    load = subprocess.Popen([sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"])
    try:
        sh(other, "dvc", "repro")
    finally:
        load.kill()
        load.wait()
    sh(repo, "git", "checkout", "-q", "HEAD", "--", ".")  # the committed run, whatever an experiment left here
    sh(repo, "dvc", "checkout", "--force")
    assert_same_outputs(repo, other)


def assert_same_outputs(a_repo, b_repo):
    """On every output of b_repo's runs (a_repo has them too): data and bases byte-identical; per run, when
    its trained model is byte-identical its captured states agree within 0.1 % of the largest state's magnitude
    (other prompts' states would differ by about that magnitude), and every run whose model and states are
    byte-identical is byte-identical in all it makes. (Not pinned down: one process's forward pass can differ
    from another's: in a fresh clone a planted run's states differed by ~1e-5 under a byte-identical model, in CI
    by more than 1e-4, while 1 and 2 threads give the same states here.) Outputs over all runs differ with the
    set of runs."""
    a, b = lock_hashes(a_repo), lock_hashes(b_repo)
    shared = {p for p in b if p.startswith(("data/", "models/", "metrics/runs/"))}
    assert shared and shared <= set(a)
    a, b = {p: a[p] for p in shared}, {p: b[p] for p in shared}
    exact = [p for p in a if p.startswith("data/tasks/") or (p.startswith("models/") and p.endswith("/base"))]
    assert {p: a[p] for p in exact} == {p: b[p] for p in exact}

    def run_of(path):  # the run an output belongs to, e.g. gpt2/cipher/r0, or None for shared outputs
        parts = Path(path).parts
        return "/".join(parts[2:5 if parts[3] not in ("multitask", "planted") else 6]) if parts[1] == "runs" else None
    drifted = {p.split("/", 1)[1] for p in a if p.startswith("models/") and not p.endswith("/base") and a[p] != b[p]}
    noisy = {run_of(p) for p in a if run_of(p) and any(run_of(p) == d or run_of(p).startswith(d + "/") for d in drifted)}
    for path in (p for p in a if p.endswith("activations.safetensors") and a[p] != b[p] and run_of(p) not in noisy):
        first, second = load_file(a_repo / path), load_file(b_repo / path)
        assert first.keys() == second.keys() and all(first[k].shape == second[k].shape for k in first), path
        for k in first:
            diff, scale = float((first[k] - second[k]).abs().max()), float(first[k].abs().max())
            assert diff <= 1e-3 * max(1.0, scale), (path, k, diff, scale)
        noisy.add(run_of(path))
    for path in a:
        if run_of(path) and run_of(path) not in noisy:
            assert a[path] == b[path], path


def test_queued_alpha_sweep_reruns_only_steering(repo):
    alpha = yaml.safe_load(sh(repo, "git", "show", "HEAD:params.yaml"))["alpha"]
    values = [a for a in (1, 2, 4) if a != alpha][:2]  # both differ from the committed run
    sh(repo, "git", "checkout", "-q", "HEAD", "--", ".")  # queue from the committed run, whatever ran before
    out = sh(repo, "dvc", "exp", "run", "--queue", "-S", f"alpha={values[0]},{values[1]}")
    names = [line.split("'")[1] for line in out.splitlines() if line.startswith("Queued experiment")]
    assert len(names) == 2, out
    # one worker: two side by side, each with parallel.threads torch threads on 2 cores, took 1,065 s in CI (one
    # process's threads wait on the other's at every barrier)
    sh(repo, "dvc", "queue", "start", "-j", "1")
    status = wait_for_queue(repo, names)
    for name in names:
        logs = sh(repo, "dvc", "queue", "logs", name)
        assert status[name] == "Success", logs
        ran = stages_run(logs)
        # nor the planted benchmark: its doses are its own (localize.doses)
        assert "steer" in ran and not ran & (UPSTREAM | {"localize"}), logs
    shown = {e["name"]: e["data"] for e in experiments(json.loads(run(repo, "dvc", "exp", "show", "--json").stdout))}
    alphas = []
    for name in names:
        data = shown[name]
        alphas.append(data["params"]["params.yaml"]["data"]["alpha"])
        assert list(data["metrics"]) == ["metrics/headline.json"], data["metrics"]
        # each experiment's commit holds the steer outputs of its own alpha
        steers = [json.loads(sh(repo, "git", "show", f"{data['rev']}:metrics/runs/{run_}/steer.json"))
                  for run_ in runs_of(repo)]
        chosen = {point["point"]["alpha"] for steer in steers if steer.get("searched")
                  for point in steer["operating_point"].values() if point["val"]}  # no val probe: the paper's point
        assert chosen == {alphas[-1]}, name
    assert sorted(alphas) == sorted(values)


def test_push_then_pull_into_a_fresh_clone(repo, clone):
    sh(repo, "dvc", "push", "--all-commits", "--run-cache")  # whatever the workspace holds, the committed run is pushed
    path = clone()
    sh(path, "dvc", "pull", "--run-cache")
    assert_reproduces_nothing(path)


def test_push_then_pull_through_s3(repo, clone, s3_endpoint):
    add_s3_remote(repo, s3_endpoint)
    try:
        sh(repo, "dvc", "push", "-r", "s3", "--all-commits", "--run-cache", env=S3_ENV)
    finally:
        sh(repo, "dvc", "remote", "remove", "--local", "s3")
    path = clone()
    add_s3_remote(path, s3_endpoint)
    sh(path, "dvc", "pull", "-r", "s3", "--run-cache", env=S3_ENV)
    assert_reproduces_nothing(path)


@pytest.mark.parametrize("remote", ["missing directory", "closed port"])
def test_pull_from_an_unreachable_remote_changes_nothing(repo, clone, tmp_path, remote):
    sh(repo, "dvc", "push", "--all-commits")
    path = clone()
    some = next(p for p, md5 in lock_hashes(path).items() if md5 and md5.endswith(".dir"))
    sh(path, "dvc", "pull", some)  # the workspace already holds some data
    if remote == "missing directory":
        sh(path, "dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "no-such-remote"))
        args, expected = [], ["failed to pull data from the cloud", "neither locally nor on remote"]
        before = workspace(path)
        ours = run(path, "memgen", "pull")  # the wrapper says what DVC does not
        assert ours.returncode == 2 and ours.stderr.strip().splitlines() == [
            f"error: remote 'local': the directory {tmp_path / 'no-such-remote'} does not exist (push to it where "
            "the data was made, or point the remote elsewhere: dvc remote modify local url ...)"], ours.stderr
        assert workspace(path) == before
    else:
        port = closed_port()
        add_s3_remote(path, f"http://127.0.0.1:{port}", connect_timeout=2, read_timeout=5)
        args, expected = ["-r", "s3"], ["Could not connect to the endpoint URL", f"http://127.0.0.1:{port}/"]
    before = workspace(path)
    started = time.monotonic()
    result = run(path, "dvc", "pull", *args, "--run-cache", env=S3_ENV, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for text in expected:
        assert text in output, output
    assert time.monotonic() - started < 120, output
    assert workspace(path) == before


@pytest.mark.parametrize("kind", ["file", "directory member"])
def test_pull_with_an_object_missing_from_the_remote(repo, clone, tmp_path, kind):
    sh(repo, "dvc", "push", "--all-commits")
    remote = tmp_path / "remote"  # hard links: the shared remote keeps every object
    shutil.copytree(remote_of(repo), remote, copy_function=os.link)
    path = clone()
    outs = lock_hashes(path)
    members = {out: json.loads(object_path(remote, md5).read_text())  # (cache: false outs are not pushed)
               for out, md5 in outs.items() if md5 and md5.endswith(".dir") and object_path(remote, md5).exists()}
    every = [*outs.values(), *(m["md5"] for listing in members.values() for m in listing)]
    unique = {md5 for md5 in every if every.count(md5) == 1 and md5 and object_path(remote, md5).exists()}
    if kind == "file":
        target, md5 = next((out, md5) for out, md5 in outs.items() if md5 in unique and not md5.endswith(".dir"))
        named = [target, md5]
    else:
        target, md5 = next((out, m["md5"]) for out, listing in members.items() for m in listing if m["md5"] in unique)
        named = [md5]  # dvc names the object it could not fetch, not the file inside the directory
    object_path(remote, md5).unlink()
    sh(path, "dvc", "remote", "modify", "--local", "local", "url", str(remote))
    result = run(path, "dvc", "pull")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "failed to pull data from the cloud" in output, output
    for text in named:
        assert text in output, output
    out = path / target
    assert not out.exists(), f"{target} was written without all of its data"
    if out.parent.exists():  # nor a temporary file beside it
        assert not [f.name for f in out.parent.iterdir() if out.name in f.name], sorted(out.parent.iterdir())
