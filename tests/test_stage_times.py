"""benchmarks/stage_times.py: each stage's minutes from a stamped `dvc repro` log."""
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from stage_times import stage_minutes  # noqa: E402

LOG = """23:58:00 Running stage 'data@cipher':
23:58:00 > python stages/data.py cipher
23:59:30 Updating lock file 'dvc.lock'
23:59:30 Running stage 'train@gpt2_shared-cipher-0':
00:02:00 step 100: loss 0.1
00:04:30 Running stage 'report':
00:04:45 Use `dvc push` to send your updates to remote storage.
""".splitlines()


def test_each_stage_runs_until_the_next_starts_across_midnight():
    assert stage_minutes(LOG) == [("data@cipher", 1.5), ("train@gpt2_shared-cipher-0", 5.0), ("report", 0.25)]


def test_the_table_from_a_kept_log(tmp_path):
    log = tmp_path / "repro.log"
    log.write_text("\n".join(LOG) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stage_times.py"), "--log", str(log)],
                         capture_output=True, text=True, check=True).stdout
    assert "5.00 min  train (1 stage)" in out and "6.75 min  in all" in out
