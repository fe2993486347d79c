"""pyproject.toml installs every package folder of the project: each folder under
simulator/, theory/, experiments/ and figures/ that holds an ``__init__.py`` is listed
as a ``collapse_sim.*`` package (the hydra launcher under experiments/hydra_plugins/ as
``hydra_plugins.*``, where hydra looks for plugins), and every entry point names a module
that exists."""

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {"collapse_sim"}
    for top in ("simulator", "theory", "experiments", "figures"):
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                parts = init.parent.relative_to(ROOT).parts
                plugin = parts[:2] == ("experiments", "hydra_plugins")
                found.add(".".join(["hydra_plugins", *parts[2:]] if plugin else ["collapse_sim", *parts]))
    assert found - listed == set(), f"package folders missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == set(), f"pyproject.toml lists packages with no folder: {sorted(listed - found)}"


def test_every_entry_point_names_a_module_and_function():
    for name, target in PYPROJECT["project"]["scripts"].items():
        module, _, func = target.partition(":")
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
        src = Path(importlib.util.find_spec(module).origin).read_text()
        assert f"def {func}(" in src, f"{name}: {module} has no function {func}"
