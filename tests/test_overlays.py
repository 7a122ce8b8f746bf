"""The report gathers each kind of per-run plot data into one table with a `run` column."""
import pandas as pd
from dvclive import Live

from memgen.report.overlays import run_names, write_overlays


def test_run_names_cover_per_task_and_multitask_runs():
    names = run_names(["gpt2"], ["cipher", "arithmetic"], [0, 1], ["gpt2"])
    assert names == {"gpt2-cipher-r0", "gpt2-cipher-r1", "gpt2-arithmetic-r0", "gpt2-arithmetic-r1",
                     "gpt2-multitask-r0", "gpt2-multitask-r1", "gpt2-multitask-r0-cipher",
                     "gpt2-multitask-r1-cipher", "gpt2-multitask-r0-arithmetic", "gpt2-multitask-r1-arithmetic"}


def test_overlays_join_csvs_and_dvclive_folders_of_asked_runs_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plots = tmp_path / "metrics" / "plots"
    (plots / "steer_layers").mkdir(parents=True)
    pd.DataFrame({"layer": [0, 1], "m2g": [0.1, None], "g2m": [0.5, 0.7]}).to_csv(
        plots / "steer_layers" / "gpt2-cipher-r0.csv", index=False)
    pd.DataFrame({"layer": [0], "m2g": [0.9], "g2m": [0.9]}).to_csv(
        plots / "steer_layers" / "llama-cipher-r0.csv", index=False)  # a run no longer asked for
    with Live(dir=str(plots / "train_curve" / "gpt2-cipher-r0"), save_dvc_exp=False, dvcyaml=None,
              report=None, monitor_system=False) as live:
        for step, loss, pair_yield in ((50, 2.0, 0.0), (100, 1.0, 0.25)):
            live.step = step
            live.log_metric("loss", loss)
            live.log_metric("pair_yield", pair_yield)

    write_overlays({"gpt2-cipher-r0"}, plots)

    layers = pd.read_csv(tmp_path / "metrics" / "overlays" / "steer_layers.csv")
    assert list(layers.columns) == ["run", "layer", "m2g", "g2m"]
    assert layers["run"].tolist() == ["gpt2-cipher-r0"] * 2 and layers["g2m"].tolist() == [0.5, 0.7]
    assert layers["m2g"].isna().tolist() == [False, True]
    curve = pd.read_csv(tmp_path / "metrics" / "overlays" / "train_curve.csv")
    assert curve.to_dict("list") == {"run": ["gpt2-cipher-r0"] * 2, "step": [50, 100], "loss": [2.0, 1.0],
                                     "pair_yield": [0.0, 0.25]}
    empty = pd.read_csv(tmp_path / "metrics" / "overlays" / "predict_by_layer.csv")
    assert list(empty.columns) == ["run"] and empty.empty  # no data of that kind yet: a header only
