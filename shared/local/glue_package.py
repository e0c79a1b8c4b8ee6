"""Builds what AWS Glue runs: `python -m shared.local.glue_package --dist dist`, called by `make package`.

Build-time only: this module is not in the zip it builds. The zip (`--extra-py-files`) holds exactly
the modules the Glue scripts can import, the import closure of `glue_jobs/*.py` within the `shared`
package, so the local tooling (the embedded PostgreSQL, the ToteSys seeder and simulator, the CLI,
`totes status`, the local SparkSession) never reaches Glue. The closure is read from the source
with `ast`: every `import` counts, including those inside functions (a lazy import still runs on
Glue when its function does), and importing `shared.a.b` also runs `shared/__init__.py` and
`shared/a/__init__.py`, so those come along.

    dist/shared.zip           the closure, .py only (pyspark, py4j and boto3 are Glue's own)
    dist/glue_jobs/<job>.py   the three thin scripts, unchanged
    dist/<bundle>.pem         shared/certs/*.pem (the RDS CA bundle): uploaded by Terraform and
                              given to the jobs with --extra-files, not inside the zip

Reproducible: sorted entries, fixed timestamps and permissions and compression level, so the same
source gives the same bytes and Terraform's `filemd5` re-uploads only real changes.
tests/test_package.py runs `make package` and imports the zip in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

PACKAGE = "shared"
SCRIPTS = "glue_jobs"
ZIP_NAME = "shared.zip"
CA_BUNDLES = "certs/*.pem"  # relative to shared/; also the wheel's package data (pyproject.toml)
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can hold: fixed, so builds repeat


def module_file(root: Path, module: str) -> Path | None:
    """The source file of `module` under `root` (a module or a package's __init__), if it exists."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """Every module name an `import` anywhere in `path` may load (`module` is its dotted name).

    `from a import b` names `a` and, when `a.b` is itself a module, `a.b`; the caller keeps only
    those it can find in the package. Relative imports are resolved against `module`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def import_closure(root: Path, scripts: Iterable[Path]) -> list[str]:
    """The files (relative to `root`, POSIX, sorted) of the `shared` modules `scripts` import."""
    pending = [
        name
        for script in scripts
        for name in imported_modules(script, "__main__")
        if name == PACKAGE or name.startswith(PACKAGE + ".")
    ]
    seen: dict[str, Path] = {}
    while pending:
        for name in _with_parents(pending.pop()):
            if name in seen:
                continue
            path = module_file(root, name)
            if path is None:
                continue  # `from shared.x import some_function`: a name, not a module
            seen[name] = path
            pending.extend(
                n for n in imported_modules(path, name) if n == PACKAGE or n.startswith(PACKAGE + ".")
            )
    return sorted(path.relative_to(root).as_posix() for path in seen.values())


def glue_scripts(root: Path) -> list[Path]:
    return sorted((root / SCRIPTS).glob("*.py"))


def package_modules(root: Path) -> list[str]:
    """The files that go into the zip: the import closure of the Glue scripts."""
    return import_closure(root, glue_scripts(root))


def ca_bundles(root: Path) -> list[Path]:
    return sorted((root / PACKAGE).glob(CA_BUNDLES))


def _mirror(sources: Sequence[Path], target: Path, pattern: str) -> None:
    """Copy `sources` into `target`, deleting the files matching `pattern` that are no longer sources."""
    target.mkdir(parents=True, exist_ok=True)
    names = {source.name for source in sources}
    for stale in target.glob(pattern):
        if stale.name not in names:
            stale.unlink()
    for source in sources:
        shutil.copyfile(source, target / source.name)


def build_package(root: Path, dist: Path) -> list[str]:
    """Write `dist/shared.zip`, `dist/glue_jobs/*.py` and `dist/*.pem`; returns the zip's entries."""
    entries = package_modules(root)
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / ZIP_NAME
    partial = dist / f".{ZIP_NAME}.partial"
    with zipfile.ZipFile(partial, "w") as archive:
        for name in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permission bits below mean the same everywhere
            info.external_attr = 0o644 << 16
            archive.writestr(info, (root / name).read_bytes(), compresslevel=9)
    os.replace(partial, target)
    _mirror(glue_scripts(root), dist / SCRIPTS, "*.py")
    _mirror(ca_bundles(root), dist, "*.pem")
    return entries


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.local.glue_package", description="Build what AWS Glue runs (make package)."
    )
    parser.add_argument("--dist", type=Path, default=Path("dist"))
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    options = parser.parse_args(argv)
    entries = build_package(options.root, options.dist)
    scripts = sorted(p.name for p in (options.dist / SCRIPTS).glob("*.py"))
    bundles = sorted(p.name for p in options.dist.glob("*.pem"))
    print(
        f"{options.dist / ZIP_NAME}: {len(entries)} files ({', '.join(entries)}); "
        f"{options.dist / SCRIPTS}: {', '.join(scripts)}; CA bundles: {', '.join(bundles) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
