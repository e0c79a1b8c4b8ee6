"""`pip install .` (not editable): the wheel a user installs holds the whole `shared` package.

The wheel is built from a copy of the checkout (so the build writes nothing into it) and installed
with --no-deps into a fresh virtual environment; everything then runs from a temporary directory,
with no PYTHONPATH, so the project's own code can only come from the wheel. The heavy third-party
dependencies (pyspark, psycopg, ...) are not installed again: a .pth file lets the new environment
also see .venv's site-packages, after its own. A .pth line only appends a folder to sys.path; the
.pth files inside that folder (the editable install's finder among them) are not processed, so the
checkout stays invisible, and the test asserts that `shared` was imported from the new environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # builds a wheel and a virtualenv: a few seconds

ROOT = Path(__file__).resolve().parents[1]
# Package data the wheel must carry: the RDS CA bundle (shared/certs/rds-global-bundle.pem). A
# placeholder is added to the copy the wheel is built from, so the rule is exercised even in a
# checkout without a bundle; every bundle of the checkout itself must be installed byte for byte.
PLACEHOLDER_PEM = "zz-wheel-test-placeholder.pem"
# Not part of a source tree a user would `pip install .` from.
NOT_SOURCE = (
    ".git",
    ".venv",
    ".local",
    ".tools",
    ".terraform",
    "dist",
    "build",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)


@dataclass(frozen=True)
class Installed:
    venv: Path
    cwd: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def run(
    args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def checkout_modules() -> list[str]:
    """Every module of the `shared` package in the checkout, as dotted names."""
    names = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return sorted(names)


def checkout_bundles() -> list[Path]:
    return sorted((ROOT / "shared" / "certs").glob("*.pem"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel-install")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    (source / "shared" / "certs").mkdir(exist_ok=True)
    (source / "shared" / "certs" / PLACEHOLDER_PEM).write_text("placeholder\n", encoding="ascii")

    # Build isolation (the default): .venv's own setuptools is older than the build-system's
    # `setuptools>=68` and has no bdist_wheel, so pip fetches the backend from the configured index.
    wheels = work / "wheels"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, source])
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("terrific_totes_etl-*.whl")

    venv = work / "venv"
    created = run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert created.returncode == 0, created.stderr
    new_python = venv / "bin" / "python"
    added = run(
        [sys.executable, "-m", "pip", "--python", new_python, "install", "--no-deps", "--quiet", wheel]
    )
    assert added.returncode == 0, added.stdout + added.stderr

    site = run([new_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    assert site.returncode == 0, site.stderr
    dependencies = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(site.stdout.strip()) / "_totes_test_dependencies.pth").write_text(
        "".join(f"{d}\n" for d in dependencies), encoding="utf-8"
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cwd = work / "elsewhere"
    cwd.mkdir()
    return Installed(venv=venv, cwd=cwd, env=env)


def test_totes_command_from_the_wheel_works(installed: Installed) -> None:
    result = run([installed.venv / "bin" / "totes", "--help"], cwd=installed.cwd, env=installed.env)
    assert result.returncode == 0, result.stderr
    for command in ("run", "seed", "simulate", "status", "query", "db"):
        assert command in result.stdout


def test_every_module_of_the_package_imports_from_the_wheel(installed: Installed) -> None:
    code = textwrap.dedent(
        """
        import importlib, json, pkgutil, shared
        names = ["shared"] + [m.name for m in pkgutil.walk_packages(shared.__path__, "shared.")]
        failed = {}
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"file": shared.__file__, "modules": sorted(names), "failed": failed}))
        """
    )
    result = run([installed.python, "-c", code], cwd=installed.cwd, env=installed.env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).resolve().is_relative_to(installed.venv.resolve()), report["file"]
    assert report["modules"] == checkout_modules()  # shared.jobs and its modules included
    assert report["failed"] == {}


def test_ca_bundle_is_installed_as_package_data(installed: Installed) -> None:
    code = "import importlib.resources as r; print(r.files('shared').joinpath('certs'))"
    result = run([installed.python, "-c", code], cwd=installed.cwd, env=installed.env)
    assert result.returncode == 0, result.stderr
    certs = Path(result.stdout.strip())
    assert certs.resolve().is_relative_to(installed.venv.resolve()), certs
    expected = sorted({PLACEHOLDER_PEM, *(p.name for p in checkout_bundles())})
    assert sorted(p.name for p in certs.iterdir()) == expected
    for bundle in checkout_bundles():  # the RDS CA bundle, once the checkout has it
        assert (certs / bundle.name).read_bytes() == bundle.read_bytes()
