"""Atomic writes (temp path, then rename) and readers that name the broken file."""
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import UserError


def _remove_stale_temps(path):
    """Remove the temp paths that a killed writer of `path` left beside it (`.<name>.` and the 8
    characters mkstemp/mkdtemp add): they are never output, but would reach git or a dvc dep's hash."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}")
    for entry in path.parent.iterdir():
        if pattern.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _normal_modes(tmp):
    """Give `tmp`, and all under it, the modes a plain open() or mkdir would: mkstemp/mkdtemp make
    them private, and so does safetensors for the weights it writes (0600 where the rest is 0644)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp, *(tmp.rglob("*") if tmp.is_dir() else [])]:
        if not path.is_symlink():
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_path(path, is_dir=False):
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    A writer killed at any point (SIGKILL, out of memory) leaves `path` either as it was, complete,
    or absent, never partial; its temp path is removed by the next write of `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        _normal_modes(tmp)
        if path.is_dir():  # moved aside first, so a kill never leaves it half deleted
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def require_keys(obj, keys, path):
    """obj must be a mapping with `keys`; else one line naming the file."""
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise UserError(f"{path}: malformed, missing {', '.join(missing)} (re-run the stage that makes it)")
    return obj


def write_jsonl(path, rows):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")


def read_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON lines ({err})") from None


def write_tensors(path, tensors, metadata=None):
    """Tensors and string metadata. The metadata is stored as one sorted JSON string, since
    safetensors writes a metadata map in no fixed order and the bytes must not vary."""
    header = {"memgen": json.dumps(metadata or {}, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=header)


def read_tensors(path):
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None


def tensor_names(path):
    """The tensor names of a safetensors file; opening it checks its header and its size, so a
    truncated or corrupted file is one line naming it."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return set(f.keys())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None


def read_tensor_metadata(path):
    """The metadata that write_tensors stored."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("memgen", "{}"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (run the stage that makes it first)") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None


def sort_json_lists(path, keys):
    """Rewrite a JSON file with the lists under `keys` sorted (libraries that keep them as sets
    write them in hash order, which changes between processes)."""
    data = read_json(path)
    for key in keys:
        if isinstance(data.get(key), list):
            data[key] = sorted(data[key])
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
