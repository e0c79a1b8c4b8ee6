"""Static checks of the local Glue 5.0 environment in docker/ (no Docker engine needed).

The image must be AWS's own Glue 5.0 image so `make docker-test` exercises the real Glue Spark and
awsglue; the databases must be healthy before the jobs start; no credential may be written into
the committed files (they come from docker/.env, which is git-ignored).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
GLUE_IMAGE = "public.ecr.aws/glue/aws-glue-libs:5"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "Dockerfile ends inside a continued line"
    pairs = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        pairs.append((instruction.upper(), args.strip()))
    return pairs


def compose() -> dict[str, Any]:
    document = yaml.safe_load((DOCKER / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict), "docker-compose.yml is not a YAML mapping"
    return document


def env_template() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.template").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.template line is not KEY=value: {line!r}"
            values[key.strip()] = value.strip()
    return values


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


def test_image_is_built_on_the_official_glue_5_image() -> None:
    froms = [args for instruction, args in dockerfile_instructions() if instruction == "FROM"]
    assert froms, "Dockerfile has no FROM"
    image = froms[0].split()[0]
    assert image == GLUE_IMAGE or image.startswith(GLUE_IMAGE + "@sha256:"), image


def test_image_runs_as_the_glue_user_in_its_workspace() -> None:
    instructions = dockerfile_instructions()
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] == "hadoop", "the image must end as the non-root hadoop user"
    workdirs = [args for instruction, args in instructions if instruction == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/home/hadoop/workspace"


def test_image_adds_a_checksummed_postgresql_jdbc_driver() -> None:
    adds = [args for instruction, args in dockerfile_instructions() if instruction == "ADD"]
    jdbc = [a for a in adds if "postgresql" in a and a.rstrip().endswith(".jar")]
    assert jdbc, "no PostgreSQL JDBC jar is added"
    assert re.search(r"--checksum=sha256:[0-9a-f]{64}\b", jdbc[0]), "the JDBC jar must be pinned by sha256"
    envs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "ENV")
    assert "TOTES_JDBC_JAR=/opt/jdbc/postgresql.jar" in envs


def test_image_keeps_glues_own_spark_stack() -> None:
    requirements = (DOCKER / "requirements-glue.txt").read_text(encoding="utf-8").lower()
    names = {re.split(r"[\[<>=!~ ]", line.strip(), maxsplit=1)[0] for line in requirements.splitlines()}
    names.discard("")
    names = {n for n in names if not n.startswith("#")}
    assert {"pytest", "chispa", "pyyaml"} <= names
    assert not names & {"pyspark", "pandas", "pyarrow", "numpy"}, "these must stay the Glue runtime's own"
    envs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "ENV")
    assert "${PYTHONPATH" in envs, "PYTHONPATH must extend the base image's, not replace it"


# ---------------------------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------------------------


def test_compose_has_two_healthy_postgres_16_databases() -> None:
    services = compose()["services"]
    for name in ("totesys", "warehouse"):
        service = services[name]
        assert service["image"] == "postgres:16", name
        test = service["healthcheck"]["test"]
        assert "pg_isready" in " ".join(test), name
        env = service["environment"]
        assert set(env) >= {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}, name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_glue_service_waits_for_healthy_databases_and_mounts_the_project() -> None:
    glue = compose()["services"]["glue"]
    assert glue["build"]["context"] == "." and glue["build"]["dockerfile"] == "Dockerfile"
    assert glue["depends_on"] == {
        "totesys": {"condition": "service_healthy"},
        "warehouse": {"condition": "service_healthy"},
    }
    assert "..:/home/hadoop/workspace" in glue["volumes"]
    assert glue["working_dir"] == "/home/hadoop/workspace"
    env = glue["environment"]
    assert env["LAKE_ROOT"] == "/tmp/lake"
    for key, host in (("TOTESYS_URL", "totesys"), ("WAREHOUSE_URL", "warehouse")):
        assert re.fullmatch(rf"postgresql://\$\{{\w+\}}:\$\{{\w+\}}@{host}:5432/\$\{{[\w:-]+\}}", env[key]), (
            env[key]
        )
    assert "pytest" in " ".join(glue["command"])


def test_compose_contains_no_literal_credentials() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key or "USER" in key.split("_")[-1:]:
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), (
                    f"{name}.{key} must come from docker/.env"
                )
            if key.endswith("_URL"):
                userinfo = str(value).split("://", 1)[-1].split("@", 1)[0]
                assert all(part.startswith("${") for part in userinfo.split(":")), (
                    f"{name}.{key} has a literal login"
                )


def test_env_template_defines_every_variable_compose_needs_and_no_password() -> None:
    text = (DOCKER / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text))
    template = env_template()
    assert used <= set(template), f"missing from docker/.env.template: {sorted(used - set(template))}"
    for key, value in template.items():
        if "PASSWORD" in key:
            assert value == "", f"{key} must be left empty in the template"


def test_real_env_file_is_git_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot ask git whether docker/.env is ignored")
    result = subprocess.run(
        ["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, "docker/.env must be git-ignored (it holds the local passwords)"
