import os

import pytest
import torch
from safetensors.torch import save_file

from memgen.errors import UserError
from memgen.io import atomic_path, read_json, read_tensor_metadata, read_tensors, sort_json_lists, write_json, write_tensors


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_directory_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_path(target, is_dir=True) as tmp:
            (tmp / "weights").write_text("v2, half")
            raise RuntimeError("killed mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (target / "weights").read_text() == "v1"
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)  # not left private like a temp dir


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_get_the_umask_modes(tmp_path, umask):
    """Weights come out like every other file (safetensors alone would write them 0600)."""
    old = os.umask(umask)
    try:
        write_tensors(tmp_path / "t.safetensors", {"x": torch.zeros(2)})
        write_json(tmp_path / "a.json", {"b": 1})
        with atomic_path(tmp_path / "model", is_dir=True) as tmp:
            save_file({"x": torch.zeros(2)}, str(tmp / "model.safetensors"))
            (tmp / "sub").mkdir()
            (tmp / "sub" / "config.json").write_text("{}")
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    files, dirs = 0o666 & ~umask, 0o777 & ~umask
    assert modes == {"t.safetensors": files, "a.json": files, "model": dirs, "model/model.safetensors": files,
                     "model/sub": dirs, "model/sub/config.json": files}


def test_round_trips_and_clear_errors(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1})
    assert read_json(tmp_path / "a.json") == {"b": 1}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
    write_tensors(tmp_path / "t.safetensors", {"x": torch.arange(3.0)})
    assert torch.equal(read_tensors(tmp_path / "t.safetensors")["x"], torch.arange(3.0))
    (tmp_path / "t.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(UserError, match="t.safetensors: not a readable safetensors file"):
        read_tensors(tmp_path / "t.safetensors")


def test_tensor_metadata_round_trips_in_a_fixed_order(tmp_path):
    meta = {"task": "cipher", "family": "gpt2", "site": "ln_2", "n_pairs": "3"}
    write_tensors(tmp_path / "a.safetensors", {"x": torch.zeros(2)}, metadata=meta)
    write_tensors(tmp_path / "b.safetensors", {"x": torch.zeros(2)}, metadata=dict(reversed(meta.items())))
    assert read_tensor_metadata(tmp_path / "a.safetensors") == meta
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_sorted_json_lists(tmp_path):
    path = tmp_path / "adapter_config.json"
    write_json(path, {"target_modules": ["v_proj", "q_proj"], "r": 8})
    sort_json_lists(path, ["target_modules"])
    assert read_json(path) == {"target_modules": ["q_proj", "v_proj"], "r": 8}
