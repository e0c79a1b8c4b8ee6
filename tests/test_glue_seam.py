"""The Glue seam (shared/runtime/glue.py) without Glue: typed config from job arguments and secrets, the
secret reader against moto's Secrets Manager, the Glue job context's state on moto's S3, the
extract's native-bookmark read, and the rule that only shared/runtime/glue.py imports awsglue.

Glue itself is never patched: the seam takes the Glue `Job`, the GlueContext, the secret reader and
the S3 client as arguments, and the tests pass small recording fakes or moto-backed boto3 clients.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from chispa import assert_df_equality
from moto import mock_aws
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from shared.config import DEFAULT_LOOKBACK_MINUTES, RDS_CA_BUNDLE, ConfigError, Settings
from shared.contract.source import SOURCE_TABLES
from shared.lake.storage import RUN_ID_FORMAT, S3Storage, read_json
from shared.runtime import glue

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-2"
PASSWORD = "hunter2-Pa55!"  # never to appear in any message
TOTESYS_SECRET = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:totes/totesys-AbCdEf"
WAREHOUSE_SECRET = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:totes/warehouse-GhIjKl"

ARGS = {
    "JOB_NAME": "totes-transform",
    "LAKE_ROOT": "s3://totes-processed/",
    "INGESTION_ROOT": "s3://totes-ingestion/",
    "CATALOG_DATABASE": "totes",
    "TOTESYS_SECRET_ID": TOTESYS_SECRET,
    "WAREHOUSE_SECRET_ID": WAREHOUSE_SECRET,
    "LOOKBACK_MINUTES": "15",
    "TempDir": "s3://totes-scripts/temp/",
    "job_bookmark_option": "job-bookmark-enable",
}

DROP = object()  # a key to leave out of a secret
# What every JDBC URL on Glue ends with by default: TLS, the certificate verified against the RDS CA
# bundle shipped with the jobs, and the host name checked.
VERIFY_FULL = "?sslmode=verify-full&sslrootcert=rds-global-bundle.pem"


def login(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "host": "totesys.example.eu-west-2.rds.amazonaws.com",
        "port": 5432,
        "dbname": "totesys",
        "username": "project_team_0",
        "password": PASSWORD,
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not DROP}


class Secrets:
    """A secret reader over a dict, recording which secrets were read."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self.documents = documents
        self.read: list[str] = []

    def __call__(self, secret_id: str) -> Any:
        self.read.append(secret_id)
        return self.documents[secret_id]


def logins(totesys: Any = None, warehouse: Any = None) -> Secrets:
    """The two database secrets (defaults: valid logins), by their ARNs."""
    return Secrets(
        {
            TOTESYS_SECRET: login() if totesys is None else totesys,
            WAREHOUSE_SECRET: login(dbname="warehouse", username="etl") if warehouse is None else warehouse,
        }
    )


# ---------------------------------------------------------------------------------------------
# settings_from_glue_args
# ---------------------------------------------------------------------------------------------


def test_settings_from_full_arguments_and_secrets() -> None:
    secrets = logins(warehouse=login(dbname="warehouse", username="etl", port="6543", sslmode="verify-full"))
    settings = glue.settings_from_glue_args(ARGS, secrets)
    assert secrets.read == [TOTESYS_SECRET, WAREHOUSE_SECRET]
    assert settings.lake_root == "s3://totes-processed"
    assert settings.ingestion == "s3://totes-ingestion"
    assert settings.state == "s3://totes-processed/_state"
    assert (settings.catalog_database, settings.lookback_minutes) == ("totes", 15)
    totesys, warehouse = settings.require_totesys(), settings.require_warehouse()
    assert totesys.jdbc_url == (
        "jdbc:postgresql://totesys.example.eu-west-2.rds.amazonaws.com:5432/totesys"
        "?sslmode=verify-full&sslrootcert=rds-global-bundle.pem"
    )
    assert (totesys.user, totesys.password, totesys.setting) == (
        "project_team_0",
        PASSWORD,
        "TOTESYS_SECRET_ID",
    )
    assert warehouse.jdbc_url.endswith(
        ":6543/warehouse?sslmode=verify-full&sslrootcert=rds-global-bundle.pem"
    )
    assert (warehouse.user, warehouse.setting) == ("etl", "WAREHOUSE_SECRET_ID")
    assert PASSWORD not in repr(settings) and PASSWORD not in totesys.masked


def test_optional_arguments_take_the_local_defaults() -> None:
    args = {
        k: v for k, v in ARGS.items() if k not in ("INGESTION_ROOT", "CATALOG_DATABASE", "LOOKBACK_MINUTES")
    }
    settings = glue.settings_from_glue_args(args, logins())
    assert settings.ingestion == "s3://totes-processed/ingestion"
    assert (settings.catalog_database, settings.lookback_minutes) == ("totes", DEFAULT_LOOKBACK_MINUTES)


@pytest.mark.parametrize(
    ("changes", "query"),
    [
        ({}, VERIFY_FULL),  # the default: verified against the bundle shipped with the jobs
        ({"sslmode": "verify-ca"}, "?sslmode=verify-ca&sslrootcert=rds-global-bundle.pem"),
        ({"sslrootcert": "corporate-ca.pem"}, "?sslmode=verify-full&sslrootcert=corporate-ca.pem"),
        ({"sslrootcert": "/opt/ca/my ca+1.pem"}, "?sslmode=verify-full&sslrootcert=/opt/ca/my%20ca%2B1.pem"),
        ({"sslmode": "require"}, "?sslmode=require"),  # an explicit choice to verify nothing
    ],
)
def test_tls_is_verify_full_against_the_rds_bundle_unless_the_secret_says_otherwise(changes, query) -> None:
    settings = glue.settings_from_glue_args(ARGS, logins(totesys=login(**changes)))
    url = settings.require_totesys()
    assert (
        url.jdbc_url == f"jdbc:postgresql://totesys.example.eu-west-2.rds.amazonaws.com:5432/totesys{query}"
    )
    assert glue.DEFAULT_SSLROOTCERT == RDS_CA_BUNDLE == "rds-global-bundle.pem"


def test_the_ca_bundle_is_checked_in_the_working_dir_and_added_for_the_executors(spark, tmp_path) -> None:
    settings = glue.settings_from_glue_args(ARGS, logins())
    with pytest.raises(ConfigError) as err:
        glue.ship_ca_files(spark, settings, tmp_path)
    assert str(err.value) == (
        f"TOTESYS_SECRET_ID: the CA file 'rds-global-bundle.pem' (sslrootcert) is not in the job's working "
        f"directory {tmp_path}: give the job --extra-files s3://<scripts>/lib/rds-global-bundle.pem "
        "(terraform/glue.tf does; `make package` builds it)"
    )
    # By default it looks where Glue puts --extra-files: the driver JVM's working directory.
    jvm_working_dir = spark.sparkContext._jvm.java.lang.System.getProperty("user.dir")
    with pytest.raises(
        ConfigError, match=f"is not in the job's working directory {re.escape(jvm_working_dir)}:"
    ):
        glue.ship_ca_files(spark, settings)
    shutil.copyfile(ROOT / "shared" / "certs" / RDS_CA_BUNDLE, tmp_path / RDS_CA_BUNDLE)
    assert glue.ship_ca_files(spark, settings, tmp_path) == [tmp_path / RDS_CA_BUNDLE]  # once for both
    added = {Path(urlparse(uri).path) for uri in spark.sparkContext.listFiles}
    assert tmp_path / RDS_CA_BUNDLE in added  # every executor fetches it into its working directory
    absolute = replace(
        settings, totesys=replace(settings.require_totesys(), sslrootcert="/etc/ssl/ca.pem"), warehouse=None
    )
    assert glue.ship_ca_files(spark, absolute, tmp_path / "nowhere") == []  # used where it is


def test_only_present_optional_arguments_are_asked_of_getresolvedoptions() -> None:
    argv = ["script.py", "--JOB_NAME", "totes-load", "--LOOKBACK_MINUTES", "5", "--job-bookmark-option", "x"]
    assert glue.glue_option_names(argv) == [*glue.GLUE_ARGUMENTS.required, "LOOKBACK_MINUTES"]
    assert "INGESTION_ROOT" in glue.glue_option_names([*argv, "--INGESTION_ROOT=s3://b/"])


def terraform_job_arguments() -> set[str]:
    """The upper-case job arguments terraform/glue.tf gives every job (the contract with this seam)."""
    import hcl2

    with (ROOT / "terraform" / "glue.tf").open(encoding="utf-8") as handle:
        common = hcl2.load(handle)["locals"][0]["common_job_arguments"]
    names = {key.strip('"').removeprefix("--") for key in common}
    return {name for name in names if name.isupper()}


def test_terraform_passes_exactly_the_arguments_the_seam_reads() -> None:
    assert terraform_job_arguments() == set(glue.GLUE_ARGUMENTS.required[1:]) | set(
        glue.GLUE_ARGUMENTS.optional
    )


def test_real_getresolvedoptions_resolves_a_glue_argv_into_settings() -> None:
    # awsglue from PyPI (AWSGlueDataplanePython 5.0.0): getResolvedOptions is pure argparse.
    utils = pytest.importorskip("awsglue.utils", reason="needs the dev dependency AWSGlueDataplanePython")
    glue_own = ["script.py", "--JOB_NAME", "totes-extract", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1"]
    glue_own += ["--job-bookmark-option", "job-bookmark-enable", "--TempDir", "s3://totes-scripts/temp/"]
    argv = glue_own + [
        token for name in sorted(terraform_job_arguments()) for token in (f"--{name}", ARGS[name])
    ]
    args = utils.getResolvedOptions(argv, glue.glue_option_names(argv))
    settings = glue.settings_from_glue_args(args, logins())
    assert args["JOB_NAME"] == "totes-extract"
    assert (settings.lake_root, settings.ingestion, settings.lookback_minutes) == (
        "s3://totes-processed",
        "s3://totes-ingestion",
        15,
    )
    required_only = glue_own + [
        token for name in glue.GLUE_ARGUMENTS.required[1:] for token in (f"--{name}", ARGS[name])
    ]
    args = utils.getResolvedOptions(required_only, glue.glue_option_names(required_only))
    assert glue.settings_from_glue_args(args, logins()).lookback_minutes == DEFAULT_LOOKBACK_MINUTES


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"LAKE_ROOT": None}, "job argument --LAKE_ROOT is missing or empty"),
        ({"TOTESYS_SECRET_ID": "  "}, "job argument --TOTESYS_SECRET_ID is missing or empty"),
        ({"WAREHOUSE_SECRET_ID": None}, "job argument --WAREHOUSE_SECRET_ID is missing or empty"),
        ({"LAKE_ROOT": "/tmp/lake"}, "--LAKE_ROOT='/tmp/lake' must be an s3://bucket"),
        ({"INGESTION_ROOT": "ingestion"}, "--INGESTION_ROOT='ingestion' must be an s3://bucket"),
        ({"LOOKBACK_MINUTES": "ten"}, "LOOKBACK_MINUTES='ten' is not a whole number"),
        ({"LOOKBACK_MINUTES": "-1"}, "LOOKBACK_MINUTES=-1 must be between 0 and 10080"),
        ({"CATALOG_DATABASE": "Totes-DB"}, "CATALOG_DATABASE='Totes-DB' must be a lower-case identifier"),
    ],
)
def test_bad_arguments_fail_before_any_secret_is_read(changes: dict[str, Any], message: str) -> None:
    args = {k: v for k, v in {**ARGS, **changes}.items() if v is not None}
    secrets = logins()
    with pytest.raises(ConfigError) as err:
        glue.settings_from_glue_args(args, secrets)
    assert message in str(err.value)
    assert secrets.read == []


@pytest.mark.parametrize("minutes", ["0", " 0 "])
def test_a_look_back_window_under_a_minute_is_refused_on_glue(minutes: str, tmp_path) -> None:
    # Glue's native JDBC bookmark moves strictly past the last `last_updated` it read: without the
    # window, a row committed after that read with the same or an earlier timestamp is never read.
    secrets = logins()
    with pytest.raises(ConfigError) as err:
        glue.settings_from_glue_args({**ARGS, "LOOKBACK_MINUTES": minutes}, secrets)
    text = str(err.value)
    assert text.startswith("job argument --LOOKBACK_MINUTES=0 must be at least 1 on Glue")
    assert "bookmark" in text and "strictly" in text
    assert secrets.read == []  # refused before any secret is read
    assert glue.settings_from_glue_args({**ARGS, "LOOKBACK_MINUTES": "1"}, logins()).lookback_minutes == 1
    # Locally 0 stays allowed: the local reader keeps the primary keys taken at the bookmark instant.
    assert Settings.from_env({"LAKE_ROOT": str(tmp_path), "LOOKBACK_MINUTES": "0"}).lookback_minutes == 0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (login(password=DROP), "has no 'password': it needs host, port, dbname, username, password"),
        (login(host=DROP, dbname=DROP), "has no 'host', 'dbname'"),
        (login(port=PASSWORD), "'port' must be a whole number from 1 to 65535 (it is a string)"),
        (login(port=70000), "'port' must be a whole number from 1 to 65535 (it is outside that range)"),
        (login(port=True), "'port' must be a whole number from 1 to 65535 (it is a boolean)"),
        (login(host=""), "'host' must be a non-empty string (it is an empty string)"),
        (login(username=42), "'username' must be a non-empty string (it is a number)"),
        (login(password=None), "'password' must be a non-empty string (it is null)"),
        (login(sslmode=PASSWORD), "'sslmode' must be one of allow, disable, prefer, require"),
        (login(sslrootcert=""), "'sslrootcert' must be a non-empty string (it is an empty string)"),
        (login(sslrootcert=7), "'sslrootcert' must be a non-empty string (it is a number)"),
        (
            login(sslmode="require", sslrootcert="ca.pem"),
            "'sslrootcert' is only used with 'sslmode' verify-ca or verify-full (sslmode is require)",
        ),
        (login(sslrootcert="certs/ca.pem"), "'sslrootcert' must be a file name shipped with --extra-files"),
        (
            [PASSWORD],
            "must hold a JSON object with keys host, port, dbname, username, password; it holds a JSON array",
        ),
    ],
)
def test_bad_secrets_name_the_secret_and_key_and_never_show_the_password(document: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        glue.settings_from_glue_args(ARGS, logins(totesys=document))
    text = str(err.value)
    assert message in text
    assert f"secret {TOTESYS_SECRET!r} (job argument --TOTESYS_SECRET_ID)" in text
    assert PASSWORD not in text


# ---------------------------------------------------------------------------------------------
# Secrets Manager (moto)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's AWS, with no region in the environment: the seam must find it in the ARN."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        yield


def put_secret(name: str, value: str | None) -> str:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name=name)["ARN"]
    if value is not None:
        client.put_secret_value(SecretId=arn, SecretString=value)
    return arn


@pytest.mark.integration  # moto's AWS
def test_secrets_are_read_from_secrets_manager_in_the_arns_region(aws) -> None:
    totesys = put_secret("totes/totesys", json.dumps(login()))
    warehouse = put_secret("totes/warehouse", json.dumps(login(dbname="warehouse", port="5433")))
    settings = glue.settings_from_glue_args(
        {**ARGS, "TOTESYS_SECRET_ID": totesys, "WAREHOUSE_SECRET_ID": warehouse},
        glue.secrets_manager_reader(),
    )
    assert settings.require_totesys().password == PASSWORD
    assert settings.require_warehouse().jdbc_url.endswith(f":5433/warehouse{VERIFY_FULL}")


@pytest.mark.integration  # moto's AWS
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "does not exist or holds no value yet: put the JSON login into it"),
        (
            '{"host": "h", "password": "' + PASSWORD + '"',
            "is not valid JSON (Expecting ',' delimiter at line 1",
        ),
    ],
)
def test_unreadable_secrets_fail_with_one_line_naming_argument_and_secret(aws, value, message) -> None:
    arn = put_secret("totes/totesys", value)
    reader = glue.secrets_manager_reader(boto3.client("secretsmanager", region_name=REGION))
    with pytest.raises(ConfigError) as err:
        glue.settings_from_glue_args({**ARGS, "TOTESYS_SECRET_ID": arn}, reader)
    text = str(err.value)
    assert text.startswith(f"job argument --TOTESYS_SECRET_ID: secret {arn!r}") and message in text
    assert PASSWORD not in text and "\n" not in text
    chain, error = [], err.value  # nothing reachable from the error may hold the secret's text
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert not any(isinstance(e, json.JSONDecodeError) or PASSWORD in str(e) for e in chain)


@pytest.mark.integration  # moto's AWS
def test_a_missing_secret_is_a_config_error(aws) -> None:
    reader = glue.secrets_manager_reader()
    with pytest.raises(ConfigError, match="does not exist or holds no value yet"):
        reader(f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope-123456")


# ---------------------------------------------------------------------------------------------
# GlueJobContext and run_glue_job on moto's S3, with a recording Job
# ---------------------------------------------------------------------------------------------


class RecordingJob:
    """Stands in for awsglue.job.Job; records init/commit and what the lake held at commit time."""

    def __init__(self, store: S3Storage, watch: str, fail_commit: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.store, self.watch, self.fail_commit = store, watch, fail_commit

    def init(self, job_name: str, args: Mapping[str, str]) -> None:
        self.calls.append(("init", job_name))

    def commit(self) -> None:
        self.calls.append(("commit", read_json(self.store, self.watch)))
        if self.fail_commit:
            raise RuntimeError("bookmark service unavailable")


class FakeGlueContext:
    def __init__(self, spark: SparkSession, frames: Mapping[str, DataFrame] | None = None) -> None:
        self.spark_session = spark
        self.frames = frames or {}
        self.reads: list[dict[str, Any]] = []
        self.create_dynamic_frame = self  # glue_context.create_dynamic_frame.from_options(...)

    def from_options(self, connection_type: str, connection_options: dict[str, Any], transformation_ctx: str):
        self.reads.append(
            {"type": connection_type, "options": connection_options, "transformation_ctx": transformation_ctx}
        )
        frame = self.frames[connection_options["dbtable"]]
        return type("DynamicFrame", (), {"toDF": lambda _self: frame})()


@pytest.fixture
def extra_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory Glue copies `--extra-files` into: here, just the RDS CA bundle."""
    folder = tmp_path_factory.mktemp("glue-working-dir")
    shutil.copyfile(ROOT / "shared" / "certs" / RDS_CA_BUNDLE, folder / RDS_CA_BUNDLE)
    return folder


@pytest.fixture
def lake(aws, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # for the library's own default S3 clients
    client = boto3.client("s3", region_name=REGION)
    for bucket in ("totes-processed", "totes-ingestion"):
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return S3Storage(client)


@pytest.mark.integration  # moto's AWS
def test_glue_job_context_keeps_state_on_s3_and_commits_glue_last(spark, lake) -> None:
    settings = glue.settings_from_glue_args(ARGS, logins())
    state = "s3://totes-processed/_state/bookmarks/load.json"
    job = RecordingJob(lake, state)
    first = glue.GlueJobContext("load", spark, settings, job, storage=lake)
    first.set_bookmark("load_watermark", {"transform_run_id": "20261122T000000000000Z"})
    assert glue.GlueJobContext("load", spark, settings, job, storage=lake).bookmark("load_watermark") is None
    first.commit()
    # Glue's commit came last: the state document was already in S3 when it ran.
    assert job.calls == [("commit", read_json(lake, state))]
    assert job.calls[0][1]["contexts"] == {"load_watermark": {"transform_run_id": "20261122T000000000000Z"}}
    history = read_json(lake, f"s3://totes-processed/_state/runs/{first.run_id}-load.json")
    assert history["status"] == "SUCCEEDED"
    second = glue.GlueJobContext("load", spark, settings, job, storage=lake)
    assert second.bookmark("load_watermark") == {"transform_run_id": "20261122T000000000000Z"}
    assert second.run_id > first.run_id and second.previous_run_id == first.run_id


@pytest.mark.integration  # moto's AWS
def test_glue_job_context_publishes_the_loads_freshness_to_cloudwatch(spark, lake) -> None:
    from shared.jobs.freshness import METRIC_NAME, TableFreshness, freshness_metrics

    settings = glue.settings_from_glue_args(ARGS, logins())
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    ctx = glue.GlueJobContext(
        "load", spark, settings, RecordingJob(lake, ""), storage=lake, cloudwatch=cloudwatch
    )
    assert ctx.publishes_metrics
    minutes = {"payment": 45.0, "sales_order": 12.5}
    tables = [TableFreshness(t, None, None, "-", None, minutes.get(t, 0.0)) for t in SOURCE_TABLES]
    ctx.publish_metrics(freshness_metrics(tables))

    listed = cloudwatch.list_metrics(Namespace=glue.METRIC_NAMESPACE, MetricName=METRIC_NAME)["Metrics"]
    assert sorted(tuple((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed) == sorted(
        [(), *((("Table", t),) for t in SOURCE_TABLES)]
    )
    now = datetime.now(UTC)

    def maximum(*dimensions: tuple[str, str]) -> list[float]:
        points = cloudwatch.get_metric_statistics(
            Namespace=glue.METRIC_NAMESPACE,
            MetricName=METRIC_NAME,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=600,
            Statistics=["Maximum"],
        )["Datapoints"]
        return [p["Maximum"] for p in points]

    assert maximum() == [45.0]  # the overall datapoint: the worst table's, what the alarm watches
    assert maximum(("Table", "sales_order")) == [12.5]
    assert maximum(("Table", "currency")) == [0.0]


def test_cloudwatch_datapoints_go_in_batches_of_20() -> None:
    class Recording:
        calls: list[dict[str, Any]] = []

        def put_metric_data(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)

    client = Recording()
    metrics = [glue.Metric("FreshnessMinutes", float(i)) for i in range(45)]
    glue.publish_to_cloudwatch(client, metrics, now=datetime(2026, 12, 2, tzinfo=UTC))
    assert [len(c["MetricData"]) for c in client.calls] == [20, 20, 5]
    assert {c["Namespace"] for c in client.calls} == {"TotesETL"}
    assert [d["Value"] for c in client.calls for d in c["MetricData"]] == [float(i) for i in range(45)]


@pytest.mark.integration  # moto's AWS
def test_run_glue_job_inits_first_runs_the_library_job_and_commits_last(
    spark, lake, capsys, extra_files
) -> None:
    job = RecordingJob(lake, "s3://totes-processed/_state/bookmarks/transform.json")
    report = glue.run_glue_job(
        "transform", ARGS, job, FakeGlueContext(spark), logins(), storage=lake, working_dir=extra_files
    )
    assert report.status == "SUCCEEDED"
    assert [c[0] for c in job.calls] == ["init", "commit"] and job.calls[0] == ("init", "totes-transform")
    assert job.calls[1][1]["run_id"] == report.run_id  # state written before Glue's commit
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "SUCCEEDED"


@pytest.mark.integration  # moto's AWS
def test_a_failed_run_logs_one_line_records_failed_and_reraises(spark, lake, capsys, extra_files) -> None:
    job = RecordingJob(lake, "s3://totes-processed/_state/bookmarks/transform.json", fail_commit=True)
    with pytest.raises(glue.GlueJobFailed, match="^RuntimeError: bookmark service unavailable$"):
        glue.run_glue_job(
            "transform", ARGS, job, FakeGlueContext(spark), logins(), storage=lake, working_dir=extra_files
        )
    assert capsys.readouterr().err == "totes transform FAILED: RuntimeError: bookmark service unavailable\n"
    (name,) = lake.list_names("s3://totes-processed/_state/runs")
    history = read_json(lake, f"s3://totes-processed/_state/runs/{name}")
    assert (history["status"], history["message"]) == ("FAILED", "RuntimeError: bookmark service unavailable")


@pytest.mark.integration  # moto's AWS
def test_a_glue_failure_is_masked_exactly_like_a_local_one(
    spark, lake, capsys, monkeypatch, tmp_path, extra_files
) -> None:
    # A driver message that quotes the configured password bare (only the configuration knows it
    # is one) and another password in key=value form (masked by its shape).
    leak = f"FATAL: server said {PASSWORD} is wrong; retry with password=Other-Secret-77 please"

    def failing_transform(ctx) -> None:
        raise RuntimeError(leak)

    monkeypatch.setattr("shared.jobs.transform.run", failing_transform)
    settings = glue.settings_from_glue_args(ARGS, logins())

    from shared.local.workflow import run_job

    local_settings = replace(settings, lake_root=str(tmp_path / "lake"), ingestion_root=None)
    with pytest.raises(RuntimeError):
        run_job("transform", spark, local_settings)
    (local_history,) = (tmp_path / "lake" / "_state" / "runs").glob("*-transform.json")
    local = json.loads(local_history.read_text(encoding="utf-8"))["message"]

    job = RecordingJob(lake, "s3://totes-processed/_state/bookmarks/transform.json")
    with pytest.raises(glue.GlueJobFailed) as raised:
        glue.run_glue_job(
            "transform", ARGS, job, FakeGlueContext(spark), logins(), storage=lake, working_dir=extra_files
        )
    (name,) = lake.list_names("s3://totes-processed/_state/runs")
    history = read_json(lake, f"s3://totes-processed/_state/runs/{name}")

    assert local == "RuntimeError: FATAL: server said *** is wrong; retry with password=*** please"
    assert (history["status"], history["message"]) == ("FAILED", local)
    assert capsys.readouterr().err == f"totes transform FAILED: {local}\n"
    # What Glue makes the run's ErrorMessage (and the failure email quotes), and the traceback it
    # logs: the masked line only, the original exception neither chained nor shown as context.
    assert str(raised.value) == local
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    shown = "".join(traceback.format_exception(raised.value))
    assert PASSWORD not in shown and "Other-Secret-77" not in shown


@pytest.mark.integration  # moto's AWS
def test_a_job_without_the_ca_bundle_fails_in_one_line_naming_extra_files(
    spark, lake, capsys, tmp_path
) -> None:
    job = RecordingJob(lake, "s3://totes-processed/_state/bookmarks/transform.json")
    with pytest.raises(glue.GlueJobFailed, match="^TOTESYS_SECRET_ID: the CA file"):
        glue.run_glue_job(
            "transform", ARGS, job, FakeGlueContext(spark), logins(), storage=lake, working_dir=tmp_path
        )
    err = capsys.readouterr().err
    assert err.startswith("totes transform FAILED: TOTESYS_SECRET_ID: the CA file 'rds-global-bundle.pem'")
    assert "--extra-files s3://<scripts>/lib/rds-global-bundle.pem" in err and err.count("\n") == 1
    assert [c[0] for c in job.calls] == ["init"]  # no commit: Glue's bookmarks stay where they were
    (name,) = lake.list_names("s3://totes-processed/_state/runs")
    history = read_json(lake, f"s3://totes-processed/_state/runs/{name}")
    assert (history["status"], history["message"]) == (
        "FAILED",
        err.removeprefix("totes transform FAILED: ").strip(),
    )


@pytest.mark.integration  # moto's AWS
def test_a_config_error_fails_before_any_state_or_commit(spark, lake, capsys) -> None:
    job = RecordingJob(lake, "s3://totes-processed/_state/bookmarks/transform.json")
    with pytest.raises(glue.GlueJobFailed, match="'port' must be a whole number"):
        glue.run_glue_job(
            "transform", ARGS, job, FakeGlueContext(spark), logins(totesys=login(port=0)), storage=lake
        )
    assert [c[0] for c in job.calls] == ["init"]
    err = capsys.readouterr().err
    assert err.startswith("totes transform FAILED: secret ") and err.count("\n") == 1 and PASSWORD not in err
    assert lake.list_names("s3://totes-processed/_state") == []


# ---------------------------------------------------------------------------------------------
# The extract's read with native bookmarks
# ---------------------------------------------------------------------------------------------

CURRENCY = SOURCE_TABLES["currency"]
# What the local reader (shared.jdbc.sources.read_increment) reports for a new source column.
EXTRA_COLUMN_NOTE = (
    "totesys.currency: column extra is not in the contract (SPEC.md section 1) and is not extracted"
)


@dataclass
class ReaderContext:
    """What GlueReader uses of its JobContext."""

    spark: SparkSession
    settings: Settings
    previous_run_id: str | None = None


def reader_context(spark: SparkSession) -> ReaderContext:
    # Without the look-back read, to see the bookmarked read alone (Glue's own config refuses 0).
    settings = replace(glue.settings_from_glue_args(ARGS, logins()), lookback_minutes=0)
    return ReaderContext(spark, settings)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def currency_rows(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, CURRENCY.spark_schema)


def test_glue_reader_reads_with_a_bookmark_on_last_updated_and_keeps_the_contract(spark) -> None:
    source = currency_rows(spark, [(1, "GBP", ts("2022-11-03 14:20:49.962"), ts("2024-11-15 08:00:00.5"))])
    # What a JDBC DynamicFrame gives: the source's columns (one the contract does not know), as read.
    as_read = source.withColumn("currency_id", F.col("currency_id").cast("long")).withColumn(
        "extra", F.lit(1)
    )
    glue_context = FakeGlueContext(spark, {"public.currency": as_read})
    increment = glue.GlueReader(glue_context)(reader_context(spark), CURRENCY)
    try:
        assert increment.bookmark is None  # Glue keeps this bookmark, committed by job.commit()
        assert_df_equality(increment.rows, source)
        # The note the local reader gives for a source column outside the contract.
        assert increment.notes == (EXTRA_COLUMN_NOTE,)
    finally:
        increment.rows.unpersist()
    (read,) = glue_context.reads
    assert read["type"] == "postgresql" and read["transformation_ctx"] == "extract_currency"
    assert read["options"] == {
        "url": f"jdbc:postgresql://totesys.example.eu-west-2.rds.amazonaws.com:5432/totesys{VERIFY_FULL}",
        "user": "project_team_0",
        "password": PASSWORD,
        "dbtable": "public.currency",
        "jobBookmarkKeys": ["last_updated"],
        "jobBookmarkKeysSortOrder": "asc",
    }


def test_a_big_tables_first_read_is_split_and_later_ones_are_not(spark) -> None:
    orders = SOURCE_TABLES["sales_order"]
    glue_context = FakeGlueContext(
        spark, {"public.sales_order": spark.createDataFrame([], orders.spark_schema)}
    )
    first, later = (
        reader_context(spark),
        replace(reader_context(spark), previous_run_id="20261122T000000000000Z"),
    )
    for ctx in (first, later):
        glue.GlueReader(glue_context)(ctx, orders).rows.unpersist()
    split, single = (read["options"] for read in glue_context.reads)
    assert (split["hashexpression"], split["hashpartitions"]) == (
        "sales_order_id",
        str(glue.GLUE_HASH_PARTITIONS),
    )
    assert "hashexpression" not in single and "hashpartitions" not in single


def test_an_empty_dynamic_frame_without_columns_is_an_empty_increment(spark) -> None:
    glue_context = FakeGlueContext(spark, {"public.currency": spark.createDataFrame([], StructType([]))})
    increment = glue.GlueReader(glue_context)(reader_context(spark), CURRENCY)
    assert_df_equality(increment.rows, currency_rows(spark, []))


def test_look_back_versions_are_unioned_once_per_primary_key_and_last_updated(spark) -> None:
    bookmarked = currency_rows(
        spark,
        [
            (1, "GBP", ts("2022-11-03 14:20:49"), ts("2024-11-15 08:00:00")),
            (2, "USD", ts("2022-11-03 14:20:49"), ts("2024-11-15 08:00:00")),
        ],
    )
    looked_back = currency_rows(
        spark,
        [
            (2, "USD", ts("2022-11-03 14:20:49"), ts("2024-11-15 08:00:00")),  # also in the bookmark read
            (3, "EUR", ts("2022-11-03 14:20:49"), ts("2024-11-15 07:58:00")),  # committed late, earlier time
            (1, "GBP", ts("2022-11-03 14:20:49"), ts("2024-11-15 07:55:00")),  # an older version of 1
        ],
    )
    expected = currency_rows(
        spark,
        [
            (1, "GBP", ts("2022-11-03 14:20:49"), ts("2024-11-15 07:55:00")),
            (1, "GBP", ts("2022-11-03 14:20:49"), ts("2024-11-15 08:00:00")),
            (2, "USD", ts("2022-11-03 14:20:49"), ts("2024-11-15 08:00:00")),
            (3, "EUR", ts("2022-11-03 14:20:49"), ts("2024-11-15 07:58:00")),
        ],
    )
    actual = glue.union_versions(CURRENCY, bookmarked, looked_back).orderBy("currency_id", "last_updated")
    assert_df_equality(actual, expected)


@pytest.mark.integration
def test_look_back_rereads_the_window_over_jdbc_outside_the_bookmark(spark, fresh_db) -> None:
    import psycopg

    from shared.config import parse_pg_url
    from shared.local import totesys

    totesys.create_schema(fresh_db)
    now = datetime.now(UTC).replace(microsecond=0)
    old, late = now - timedelta(hours=2), now - timedelta(minutes=5)
    with psycopg.connect(fresh_db) as conn:  # ToteSys keeps UTC wall-clock time, without a zone
        for currency_id, code, at in [(1, "GBP", old), (2, "USD", late), (3, "EUR", now)]:
            naive = at.replace(tzinfo=None)
            conn.execute("INSERT INTO currency VALUES (%s, %s, %s, %s)", (currency_id, code, naive, naive))
    # Glue's bookmark read saw only EUR; USD was committed late with an earlier timestamp.
    bookmarked = currency_rows(spark, [(3, "EUR", now, now)])
    settings = Settings(
        lake_root="s3://totes-processed", totesys=parse_pg_url("TOTESYS_URL", fresh_db), lookback_minutes=8
    )
    previous_run = (now - timedelta(minutes=10)).strftime(RUN_ID_FORMAT)  # window: 18 minutes back
    ctx = ReaderContext(spark, settings, previous_run)
    increment = glue.GlueReader(FakeGlueContext(spark, {"public.currency": bookmarked}))(ctx, CURRENCY)
    try:
        expected = currency_rows(spark, [(2, "USD", late, late), (3, "EUR", now, now)])
        assert_df_equality(increment.rows.orderBy("currency_id"), expected)
    finally:
        increment.rows.unpersist()


@pytest.mark.integration
def test_glue_and_local_readers_report_a_new_source_column_alike(spark, fresh_db) -> None:
    import psycopg

    from shared.config import parse_pg_url
    from shared.jdbc.sources import read_increment, read_table
    from shared.local import totesys

    totesys.create_schema(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        conn.execute("ALTER TABLE currency ADD COLUMN extra integer")
        conn.execute("INSERT INTO currency VALUES (1, 'GBP', now(), now(), 7)")
    url = parse_pg_url("TOTESYS_URL", fresh_db)
    local = read_increment(spark, url, CURRENCY, None)
    # What Glue's JDBC DynamicFrame holds: the table as the source has it, every column.
    frame = read_table(spark, url, "currency")
    settings = Settings(lake_root="s3://totes-processed", totesys=url, lookback_minutes=0)
    ctx = ReaderContext(spark, settings)
    on_glue = glue.GlueReader(FakeGlueContext(spark, {"public.currency": frame}))(ctx, CURRENCY)
    try:
        assert local.notes == on_glue.notes == (EXTRA_COLUMN_NOTE,)
        assert_df_equality(on_glue.rows, local.rows)
    finally:
        local.rows.unpersist()
        on_glue.rows.unpersist()


def test_look_back_window_ends_at_the_previous_committed_extract_else_now() -> None:
    now = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
    previous = glue.lookback_anchor("20241115T084000123456Z", now)
    assert previous == datetime(2024, 11, 15, 8, 40, 0, 123456, tzinfo=UTC)
    assert glue.lookback_start(previous, 5) == datetime(2024, 11, 15, 8, 35, 0, 123456, tzinfo=UTC)
    assert glue.lookback_anchor(None, now) == now  # first extract of this lake
    plus_two = now.astimezone(timezone(timedelta(hours=2)))
    assert glue.lookback_start(plus_two, 15) == datetime(2024, 11, 15, 8, 45, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Only shared/runtime/glue.py imports awsglue, and only inside functions
# ---------------------------------------------------------------------------------------------


def awsglue_imports(source: str) -> list[tuple[int, bool]]:
    """(line, inside a function) of every `import awsglue...` / `from awsglue... import` in `source`.

    One parse, walked with the enclosing scope kept: an import under a module-level `if` or `try`
    runs at import time just like one at the top, so only a def or lambda body counts as inside.
    """
    found: list[tuple[int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "awsglue" for a in node.names):
            found.append((node.lineno, in_function))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "awsglue":
            found.append((node.lineno, in_function))
        scope = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(ast.parse(source), False)
    return found


def test_the_awsglue_import_finder_tells_module_level_from_function_level() -> None:
    source = textwrap.dedent(
        """
        import json
        try:
            from awsglue.context import GlueContext
        except ImportError:
            pass

        def main():
            import awsglue.utils
        """
    )
    assert awsglue_imports(source) == [(4, False), (9, True)]


def test_only_the_glue_seam_imports_awsglue_and_never_at_module_level() -> None:
    sources = sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "glue_jobs").glob("*.py")])
    found = {p.relative_to(ROOT).as_posix(): awsglue_imports(p.read_text(encoding="utf-8")) for p in sources}
    assert {name for name, imports in found.items() if imports} == {"shared/runtime/glue.py"}
    assert len(found["shared/runtime/glue.py"]) >= 3  # GlueContext, Job, getResolvedOptions, in main()
    assert [line for line, inside in found["shared/runtime/glue.py"] if not inside] == []


def test_every_shared_module_imports_without_awsglue() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.modules["awsglue"] = None  # any `import awsglue...` now raises ImportError
        import shared
        names = sorted(m.name for m in pkgutil.walk_packages(shared.__path__, "shared."))
        for name in names:
            importlib.import_module(name)
        print(" ".join(names))
        """
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert set(result.stdout.split()) == modules - {"shared"}
    assert "shared.runtime.glue" in modules
