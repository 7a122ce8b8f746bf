"""What the side-run scripts of experiments/ share: they run `dvc exp run` in the workspace, then put it back."""
import subprocess


def restore_workspace():
    """The workspace as it was: the default run's params, lock and outputs."""
    subprocess.run(["git", "checkout", "--", "params.yaml", "dvc.lock", "metrics"], check=True)
    subprocess.run(["dvc", "checkout", "--force", "--quiet"], check=False)
