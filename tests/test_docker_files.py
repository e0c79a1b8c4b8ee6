"""Static checks of the local Glue 5.0 environment in docker/ (no Docker engine needed).

The image must be AWS's own Glue 5.0 image so `make docker-test` exercises the real Glue Spark and
awsglue; the databases must be healthy before the jobs start; no credential may be written into
the committed files (they come from docker/.env, which is git-ignored). `make docker-run` must run
the three Glue scripts through the image's spark-submit with what `make package` built: the runner
(docker/run_glue_jobs.sh) is executed here with a spark-submit that records its arguments, which
then go through awsglue's getResolvedOptions and the Glue seam's configuration, with the secrets
docker/local_aws.py puts into moto.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
            if key.endswith("_URL") and "@" in str(value):  # a URL with a login in it
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


# ---------------------------------------------------------------------------------------------
# make docker-run: the three Glue scripts through the image's spark-submit, with the shipped zip
# ---------------------------------------------------------------------------------------------

RUNNER = DOCKER / "run_glue_jobs.sh"
WORKSPACE = "/home/hadoop/workspace"
JOBS = ("extract", "transform", "load")
# Stand-ins for docker/.env when compose's ${...} are resolved here.
DOTENV = {
    "TOTESYS_USER": "totesys",
    "TOTESYS_PASSWORD": "local-totesys-pw",
    "TOTESYS_DB": "totesys",
    "WAREHOUSE_USER": "warehouse",
    "WAREHOUSE_PASSWORD": "local-warehouse-pw",
    "WAREHOUSE_DB": "warehouse",
}


def make_recipe(target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of `target` in make/infra.mk."""
    lines = (ROOT / "make" / "infra.mk").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{target}:"):
            prerequisites = line.split(":", 1)[1].split("##", 1)[0].split()
            recipe = []
            for body in lines[index + 1 :]:
                if not body.startswith("\t"):
                    break
                recipe.append(body.strip())
            return prerequisites, recipe
    raise AssertionError(f"make/infra.mk has no target {target}")


def resolved(value: str) -> str:
    """A compose value with ${NAME}, ${NAME:-default} and ${NAME:?error} taken from DOTENV."""
    return re.sub(r"\$\{(\w+)(?::[-?][^}]*)?\}", lambda m: DOTENV[m.group(1)], value)


def jobs_environment() -> dict[str, str]:
    return {k: resolved(str(v)) for k, v in compose()["services"]["jobs"]["environment"].items()}


def load_local_aws() -> Any:
    spec = importlib.util.spec_from_file_location("local_aws", DOCKER / "local_aws.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Submitted:
    returncode: int
    stderr: str
    calls: list[list[str]]  # each spark-submit's arguments


def run_runner(tmp_path: Path, workspace: Path, fail_job: str = "") -> Submitted:
    """docker/run_glue_jobs.sh with the jobs service's environment and a spark-submit that records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "spark-submit.jsonl"
    fake = bin_dir / "spark-submit"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['RECORD'], 'a') as out:\n"
        "    out.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "script = next(a for a in sys.argv[1:] if a.endswith('.py'))\n"
        "sys.exit(1 if os.environ.get('FAIL_JOB') and script.endswith('/' + os.environ['FAIL_JOB'] + '.py') else 0)\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    env = {
        **jobs_environment(),
        "TOTES_JDBC_JAR": "/opt/jdbc/postgresql.jar",  # the Dockerfile's ENV
        "WORKSPACE": str(workspace),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RECORD": str(record),
        "FAIL_JOB": fail_job,
    }
    result = subprocess.run(["bash", str(RUNNER)], env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return Submitted(result.returncode, result.stderr, calls)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make package` builds: the jobs service's workspace."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            "make/package.mk",
            "package",
            f"DIST={out}",
            f"PY={sys.executable}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def script_and_arguments(call: list[str]) -> tuple[list[str], str, list[str]]:
    """(spark-submit options, the script, the script's own arguments) of one recorded call."""
    index = next(
        i for i, a in enumerate(call) if a.endswith(".py") and not call[i - 1].startswith("--py-files")
    )
    return call[:index], call[index], call[index + 1 :]


def test_docker_run_builds_the_package_seeds_then_runs_the_jobs_service() -> None:
    prerequisites, recipe = make_recipe("docker-run")
    assert "package" in prerequisites, "the jobs run what `make package` built: build it first"
    assert len(recipe) == 2, recipe
    seed, jobs = recipe
    assert seed.startswith("$(COMPOSE) run --rm") and " glue " in f"{seed} " and "$(DOCKER_SEED_CMD)" in seed
    infra = (ROOT / "make" / "infra.mk").read_text(encoding="utf-8")
    assert re.search(
        r"^DOCKER_SEED_CMD \?= python3 -m shared\.local\.cli seed --if-empty$", infra, flags=re.M
    )
    assert re.fullmatch(r"\$\(COMPOSE\) run --rm( --build)? jobs", jobs), "jobs runs its own command"
    assert "shared.local.cli run" not in infra, "the local CLI must not stand in for the Glue scripts"


def test_jobs_service_sees_only_the_package_and_runs_the_glue_scripts() -> None:
    services = compose()["services"]
    jobs = services["jobs"]
    assert jobs["image"] == services["glue"]["image"] and jobs["build"] == services["glue"]["build"]
    assert jobs["depends_on"] == {
        "totesys": {"condition": "service_healthy"},
        "warehouse": {"condition": "service_healthy"},
        "moto": {"condition": "service_healthy"},
    }
    # The workspace is dist/ (what Terraform uploads), never the checkout.
    assert f"../dist:{WORKSPACE}:ro" in jobs["volumes"]
    assert not [v for v in jobs["volumes"] if v.split(":")[0] in ("..", "../shared", "../glue_jobs")]
    assert "./run_glue_jobs.sh:/home/hadoop/docker/run_glue_jobs.sh:ro" in jobs["volumes"]
    assert "./local_aws.py:/home/hadoop/docker/local_aws.py:ro" in jobs["volumes"]
    assert jobs["entrypoint"] == ["bash", "-lc"]
    assert jobs["command"] == [
        "python3 /home/hadoop/docker/local_aws.py && bash /home/hadoop/docker/run_glue_jobs.sh"
    ]
    env = jobs_environment()
    assert env["AWS_ENDPOINT_URL"] == "http://moto:5000"
    moto = services["moto"]
    assert moto["image"] == services["glue"]["image"] and moto["entrypoint"] == [
        "python3",
        "-m",
        "moto.server",
    ]
    assert moto["command"] == ["-H", "0.0.0.0", "-p", "5000"] and "ports" not in moto
    assert "5000/moto-api/" in " ".join(moto["healthcheck"]["test"])
    requirements = (DOCKER / "requirements-glue.txt").read_text(encoding="utf-8")
    assert re.search(r"^moto\[[^\]]*\bserver\b[^\]]*\]", requirements, flags=re.M)


def test_runner_spark_submits_the_three_glue_scripts_in_order_with_the_zip(
    packaged: Path, tmp_path: Path
) -> None:
    submitted = run_runner(tmp_path, packaged)
    assert submitted.returncode == 0, submitted.stderr
    assert [script_and_arguments(call)[1] for call in submitted.calls] == [
        f"{packaged}/glue_jobs/{job}.py" for job in JOBS
    ]
    for call in submitted.calls:
        options, script, _ = script_and_arguments(call)
        assert Path(script).is_file()  # the copy `make package` made
        assert options[options.index("--py-files") + 1] == f"{packaged}/shared.zip"
        assert options[options.index("--driver-class-path") + 1] == "/opt/jdbc/postgresql.jar"
        confs = [options[i + 1] for i, option in enumerate(options) if option == "--conf"]
        assert "spark.hadoop.fs.s3a.endpoint=http://moto:5000" in confs
        assert "spark.hadoop.fs.s3a.path.style.access=true" in confs


def test_runner_passes_every_glue_argument_the_seam_reads_and_they_make_a_valid_config(
    packaged: Path, tmp_path: Path
) -> None:
    # The jobs' own path on Glue: awsglue's getResolvedOptions over the script's arguments, then the
    # seam's settings, with the secrets docker/local_aws.py puts into (here in-process) moto.
    utils = pytest.importorskip("awsglue.utils", reason="needs the dev dependency AWSGlueDataplanePython")
    import boto3
    from moto import mock_aws

    from shared.runtime import glue

    local_aws = load_local_aws()
    env = jobs_environment()
    calls = run_runner(tmp_path, packaged).calls
    assert len(calls) == len(JOBS)
    with mock_aws():
        s3 = boto3.client("s3", region_name=env["AWS_REGION"])
        secrets = boto3.client("secretsmanager", region_name=env["AWS_REGION"])
        local_aws.provision(env, s3, secrets)
        local_aws.provision(env, s3, secrets)  # idempotent: a second docker-run
        assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == [
            "totes-ingestion",
            "totes-processed",
        ]
        for job, call in zip(JOBS, calls, strict=True):
            _, script, arguments = script_and_arguments(call)
            argv = [script, *arguments]
            names = {a[2:] for a in arguments if a.startswith("--")}
            assert names == {*glue.GLUE_ARGUMENTS.required, *glue.GLUE_ARGUMENTS.optional}
            args = utils.getResolvedOptions(argv, glue.glue_option_names(argv))
            assert args["JOB_NAME"] == f"totes-{job}"
            settings = glue.settings_from_glue_args(args, glue.secrets_manager_reader(secrets))
            assert (settings.lake_root, settings.ingestion) == (
                "s3://totes-processed",
                "s3://totes-ingestion",
            )
            totesys, warehouse = settings.require_totesys(), settings.require_warehouse()
            assert (totesys.host, totesys.port, totesys.user, totesys.password) == (
                "totesys",
                5432,
                DOTENV["TOTESYS_USER"],
                DOTENV["TOTESYS_PASSWORD"],
            )
            assert (warehouse.host, warehouse.database, warehouse.password) == (
                "warehouse",
                DOTENV["WAREHOUSE_DB"],
                DOTENV["WAREHOUSE_PASSWORD"],
            )


def test_runner_stops_at_the_first_failed_job(packaged: Path, tmp_path: Path) -> None:
    submitted = run_runner(tmp_path, packaged, fail_job="transform")
    assert submitted.returncode != 0
    assert [Path(script_and_arguments(c)[1]).stem for c in submitted.calls] == ["extract", "transform"]


def test_runner_passes_the_ca_bundle_as_spark_files(packaged: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(packaged, workspace)
    (workspace / "rds-global-bundle.pem").write_text("bundle\n", encoding="ascii")
    submitted = run_runner(tmp_path, workspace)
    assert submitted.returncode == 0, submitted.stderr
    for call in submitted.calls:
        options = script_and_arguments(call)[0]
        assert options[options.index("--files") + 1] == f"{workspace}/rds-global-bundle.pem"


def test_runner_refuses_to_run_without_the_package(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    submitted = run_runner(tmp_path, empty)
    assert submitted.returncode == 2 and "make package" in submitted.stderr
    assert submitted.calls == []


def test_local_aws_refuses_any_endpoint_but_the_compose_moto() -> None:
    local_aws = load_local_aws()
    env = jobs_environment()
    assert local_aws.check_local_endpoint(env) == "http://moto:5000"
    for endpoint in ("", "https://secretsmanager.eu-west-2.amazonaws.com", "https://moto.example.com"):
        with pytest.raises(local_aws.LocalAwsError, match="AWS_ENDPOINT_URL"):
            local_aws.check_local_endpoint({**env, "AWS_ENDPOINT_URL": endpoint})
