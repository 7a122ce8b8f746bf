"""dvc.yaml's code deps cannot drift: every module a stage script imports from src/memgen, directly
or through other modules (package __init__ files included, since Python runs them), is a dep of that
stage, as the file or a folder holding it; and every code dep listed exists."""
import ast

import pytest
import yaml

from conftest import ROOT

SRC = ROOT / "src"


def module_file(dotted):
    """The file of a memgen module or package, or None when `dotted` names something inside one."""
    path = SRC.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported(path):
    """Dotted memgen modules `path` imports (a name imported from a package counts when it is a module)."""
    # a/b/c.py and a/b/__init__.py alike: the last part stands for the module, so level 1 is a.b
    package = ".".join(path.relative_to(SRC).with_suffix("").parts) if path.is_relative_to(SRC) else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "memgen"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:-node.level]
                base = ".".join(parent + ([base] if base else []))
            if base.split(".")[0] != "memgen":
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
    return found


def closure(script):
    """Every file of src/memgen that running `script` imports."""
    files, todo = set(), [script]
    while todo:
        for dotted in imported(todo.pop()):
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ first
                f = module_file(".".join(parts[:i]))
                if f and f not in files:
                    files.add(f)
                    todo.append(f)
    return files


def stages():
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        script = next(w for w in stage["cmd"].split() if w.startswith("stages/"))
        yield name, ROOT / script, [d for d in stage["deps"] if d.startswith(("src/", "stages/"))]


@pytest.mark.parametrize("name,script,deps", list(stages()), ids=[s[0] for s in stages()])
def test_every_imported_module_is_a_dep(name, script, deps):
    covered = [ROOT / d for d in deps]
    missing = sorted(str(f.relative_to(ROOT)) for f in closure(script) | {script}
                     if not any(f == d or d in f.parents for d in covered))
    assert not missing, f"stage {name}: dvc.yaml misses the deps {missing}"
    absent = [d for d in deps if not (ROOT / d).exists()]
    assert not absent, f"stage {name}: dvc.yaml lists deps that do not exist: {absent}"


def test_the_closure_sees_relative_and_package_imports():
    files = {str(f.relative_to(SRC)) for f in closure(ROOT / "stages" / "extract.py")}
    # run.py imports .families (its __init__ imports gpt2, llama); the store and the hooks directly
    assert {"memgen/__init__.py", "memgen/run.py", "memgen/families/__init__.py", "memgen/families/llama.py",
            "memgen/activations.py", "memgen/sites.py", "memgen/tasks/base.py"} <= files
    assert "memgen/report/__init__.py" not in files and "memgen/stats.py" not in files
