"""The Glue seam: the only module that imports `awsglue`, and only inside functions.

Glue runs `glue_jobs/<job>.py`, which calls `main(job, sys.argv)`. `main` resolves the job arguments,
starts the GlueContext, calls `job.init` first, builds the one typed `Settings` (secrets from
Secrets Manager, never from job arguments), and runs the job from the one registry `totes run` uses
locally (shared/runtime/registry.py: the same databases checked first, the same notes, the same masking). Where the runtimes differ (docs/glue.md):

- the extract reads with Glue's native JDBC job bookmarks (`GlueReader`), plus an optional
  look-back read outside the bookmark, de-duplicated by version key;
- transform and load keep their state documents in `<LAKE_ROOT>/_state` on S3, exactly like
  `LocalJobContext` (`GlueJobContext` is one), and `job.commit()` runs last, inside `ctx.commit()`;
- a job's metrics (the load's freshness, shared/jobs/freshness.py) go to CloudWatch
  (`GlueJobContext.publish_metrics`, namespace `METRIC_NAMESPACE`); locally nothing is published.

Everything testable is a plain function taking its collaborators as arguments (the Glue `Job`, the
GlueContext, the secret reader, the S3 client), so the tests run without Glue. What Glue runs is
built by `shared.local.glue_package` (`make package`), which is not shipped.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shared.config import _SSLMODES, RDS_CA_BUNDLE, VERIFYING_SSLMODES, ConfigError, PgUrl, Settings
from shared.contract.source import SourceTable
from shared.jdbc.sources import (
    Increment,
    check_reachable,
    contract_columns,
    extra_column_notes,
    read_table,
)
from shared.jobs import extract
from shared.lake.storage import RUN_ID_FORMAT, Storage
from shared.runtime.context import JobContext, JobReport, LocalJobContext, Metric
from shared.runtime.jvm_names import import_hot_classes
from shared.runtime.registry import failure_reason, job_spec, run_registered


class ArgumentNames(NamedTuple):
    required: tuple[str, ...]
    optional: tuple[str, ...]


# The job arguments the jobs read (terraform/glue.tf passes all of them to every job). Credentials are
# never job arguments: the two *_SECRET_ID name Secrets Manager secrets that hold them.
GLUE_ARGUMENTS = ArgumentNames(
    required=("JOB_NAME", "LAKE_ROOT", "TOTESYS_SECRET_ID", "WAREHOUSE_SECRET_ID"),
    optional=("INGESTION_ROOT", "CATALOG_DATABASE", "LOOKBACK_MINUTES"),
)
SECRET_ARGUMENTS = {"totesys": "TOTESYS_SECRET_ID", "warehouse": "WAREHOUSE_SECRET_ID"}
SECRET_KEYS = ("host", "port", "dbname", "username", "password")
# On AWS the databases are reached across the internet (the NAT gateway): TLS always, and the
# server's certificate verified against the RDS CA bundle shipped with the jobs (`--extra-files`)
# and its host name checked, or a man in the middle could read everything, passwords included.
# Both are overridable per database by the secret's optional `sslmode` / `sslrootcert` keys.
DEFAULT_SSLMODE = "verify-full"
DEFAULT_SSLROOTCERT = RDS_CA_BUNDLE
BOOKMARK_KEY = "last_updated"
# On Glue the look-back window is what catches rows sharing the bookmark's `last_updated` and rows
# committed late with an earlier one (native JDBC bookmarks need strictly increasing keys), so it
# cannot be turned off there; locally 0 is allowed (the local reader keeps the keys at the bookmark).
GLUE_MIN_LOOKBACK_MINUTES = 1

_S3_LOCATION = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")


# ---------------------------------------------------------------------------------------------
# Configuration: job arguments + secrets -> Settings
# ---------------------------------------------------------------------------------------------


def glue_option_names(argv: Sequence[str]) -> list[str]:
    """The names to ask `getResolvedOptions` for: every required one, and the optional ones given.

    `getResolvedOptions` fails on any name it is asked for that is absent, so optional arguments are
    asked for only when the run has them.
    """
    given = {arg[2:].split("=", 1)[0] for arg in argv if arg.startswith("--")}
    return [*GLUE_ARGUMENTS.required, *(name for name in GLUE_ARGUMENTS.optional if name in given)]


def settings_from_glue_args(args: Mapping[str, str], secrets: Callable[[str], Any]) -> Settings:
    """The one typed config, from resolved Glue job arguments and the two database secrets.

    `secrets(secret_id)` returns the parsed JSON of a secret (`secrets_manager_reader()` on Glue).
    Raises ConfigError naming the job argument, or the secret and key, that is missing or malformed;
    no message ever contains a secret value.
    """
    for name in GLUE_ARGUMENTS.required[1:]:  # JOB_NAME is Glue's own, not a setting
        if not (args.get(name) or "").strip():
            raise ConfigError(
                f"job argument --{name} is missing or empty; every job needs "
                + ", ".join(f"--{n}" for n in GLUE_ARGUMENTS.required[1:])
            )
    lake = args["LAKE_ROOT"].strip()
    ingestion = (args.get("INGESTION_ROOT") or "").strip()
    for name, value in (("LAKE_ROOT", lake), ("INGESTION_ROOT", ingestion)):
        if value and not _S3_LOCATION.match(value):
            raise ConfigError(
                f"job argument --{name}={value!r} must be an s3://bucket[/prefix] location on Glue"
            )
    env = {"LAKE_ROOT": lake}
    for name in ("CATALOG_DATABASE", "LOOKBACK_MINUTES"):
        if args.get(name) is not None:
            env[name] = args[name]
    settings = Settings.from_env(env)  # same rules (and messages) as the local configuration
    if settings.lookback_minutes < GLUE_MIN_LOOKBACK_MINUTES:
        raise ConfigError(
            f"job argument --LOOKBACK_MINUTES={settings.lookback_minutes} must be at least "
            f"{GLUE_MIN_LOOKBACK_MINUTES} on Glue: Glue's JDBC bookmark reads strictly after the last "
            "last_updated it took, so without the window a row committed after a read with that "
            "timestamp or an earlier one is never extracted (docs/glue.md)"
        )
    urls = {
        database: pg_url_from_secret(argument, args[argument].strip(), _secret(secrets, argument, args))
        for database, argument in SECRET_ARGUMENTS.items()
    }
    return replace(
        settings,
        ingestion_root=ingestion.rstrip("/") or None,
        totesys=urls["totesys"],
        warehouse=urls["warehouse"],
    )


def _secret(secrets: Callable[[str], Any], argument: str, args: Mapping[str, str]) -> Any:
    try:
        return secrets(args[argument].strip())
    except ConfigError as exc:
        raise ConfigError(f"job argument --{argument}: {exc}") from None


def pg_url_from_secret(argument: str, secret_id: str, document: Any) -> PgUrl:
    """A PgUrl from one secret's JSON {host, port, dbname, username, password[, sslmode, sslrootcert]}.

    TLS defaults to `verify-full` against the RDS CA bundle shipped with the jobs (RDS_CA_BUNDLE);
    `sslmode` overrides the mode, `sslrootcert` the CA file (a file name given to the job with
    `--extra-files`, or an absolute path on the Glue workers).

    `argument` (e.g. TOTESYS_SECRET_ID) becomes the PgUrl's setting, so connection errors later name
    it. Messages name the secret and the key, and describe a bad value only by its kind.
    """
    where = f"secret {secret_id!r} (job argument --{argument})"
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{where} must hold a JSON object with keys {', '.join(SECRET_KEYS)}; it holds {_kind(document)}"
        )
    missing = [key for key in SECRET_KEYS if key not in document]
    if missing:
        raise ConfigError(
            f"{where} has no {', '.join(repr(k) for k in missing)}: it needs {', '.join(SECRET_KEYS)} "
            f"(keys present: {', '.join(sorted(str(k) for k in document)) or 'none'})"
        )
    text: dict[str, str] = {}
    for key in ("host", "dbname", "username", "password"):
        value = document[key]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key!r} must be a non-empty string (it is {_kind(value)})")
        text[key] = value
    port = document["port"]
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(f"{where}: 'port' must be a whole number from 1 to 65535 (it is {_kind(port)})")
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"{where}: 'port' must be a whole number from 1 to 65535 (it is outside that range)"
        )
    sslmode = document.get("sslmode") or DEFAULT_SSLMODE
    if sslmode not in _SSLMODES:
        raise ConfigError(f"{where}: 'sslmode' must be one of {', '.join(sorted(_SSLMODES))}")
    sslrootcert = document.get("sslrootcert")
    if sslrootcert is not None:
        if not isinstance(sslrootcert, str) or not sslrootcert.strip():
            raise ConfigError(
                f"{where}: 'sslrootcert' must be a non-empty string (it is {_kind(sslrootcert)})"
            )
        sslrootcert = sslrootcert.strip()
        if sslmode not in VERIFYING_SSLMODES:
            raise ConfigError(
                f"{where}: 'sslrootcert' is only used with 'sslmode' verify-ca or verify-full "
                f"(sslmode is {sslmode})"
            )
        if not sslrootcert.startswith("/") and "/" in sslrootcert:
            raise ConfigError(
                f"{where}: 'sslrootcert' must be a file name shipped with --extra-files (it lands in "
                "each node's working directory) or an absolute path, not a relative path with folders"
            )
    elif sslmode in VERIFYING_SSLMODES:
        sslrootcert = DEFAULT_SSLROOTCERT
    return PgUrl(
        setting=argument,
        host=text["host"].strip(),
        port=port,
        database=text["dbname"].strip(),
        user=text["username"].strip(),
        password=text["password"],
        sslmode=sslmode,
        sslrootcert=sslrootcert,
    )


def _kind(value: Any) -> str:
    """The JSON kind of a bad value, never the value (it may be a password pasted into the wrong key)."""
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    return type(value).__name__


def secrets_manager_reader(client: Any = None) -> Callable[[str], Any]:
    """`secrets(secret_id)` -> the secret's parsed JSON, read with boto3's Secrets Manager client.

    The client is created per secret in the secret ARN's region when none is given. Every failure
    is a ConfigError naming the secret; a JSON error reports only line and column (the decoder's
    exception holds the whole secret text, so it is neither chained nor kept as context).
    """

    def read(secret_id: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        service = client if client is not None else _secrets_client(secret_id)
        try:
            response = service.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            if code == "ResourceNotFoundException":
                raise ConfigError(
                    f"secret {secret_id!r} does not exist or holds no value yet: put the JSON login "
                    "into it (docs/deploying.md, step 3)"
                ) from None
            raise ConfigError(
                f"secret {secret_id!r} cannot be read: {code}: {error.get('Message', '')}"
            ) from None
        except BotoCoreError as exc:
            raise ConfigError(f"secret {secret_id!r} cannot be read: {type(exc).__name__}: {exc}") from None
        text = response.get("SecretString")
        if not text:
            raise ConfigError(f"secret {secret_id!r} has no SecretString: expected a JSON object")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
        # Raised outside the handler: not even a suppressed __context__ keeps the decoder's copy.
        raise ConfigError(f"secret {secret_id!r} is not valid JSON ({problem})")

    return read


def _secrets_client(secret_id: str) -> Any:
    import boto3

    parts = secret_id.split(":")
    region = parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None
    return boto3.client("secretsmanager", region_name=region)


# ---------------------------------------------------------------------------------------------
# Runtime: the Glue job context and the extract's native-bookmark read
# ---------------------------------------------------------------------------------------------


class GlueJob(Protocol):
    """What the jobs need of `awsglue.job.Job` (a fake in tests)."""

    def init(self, job_name: str, args: Mapping[str, str]) -> None: ...
    def commit(self) -> None: ...


class DynamicFrame(Protocol):
    """What the extract needs of `awsglue.dynamicframe.DynamicFrame`."""

    def toDF(self) -> DataFrame: ...  # Glue's own (camel-case) name


class DynamicFrameReader(Protocol):
    """What the extract needs of `GlueContext.create_dynamic_frame` (a `DynamicFrameReader`)."""

    def from_options(
        self, connection_type: str, connection_options: dict[str, Any], transformation_ctx: str
    ) -> DynamicFrame: ...


class GlueContextLike(Protocol):
    """What the jobs need of `awsglue.context.GlueContext` (a fake in tests)."""

    @property
    def spark_session(self) -> SparkSession: ...
    @property
    def create_dynamic_frame(self) -> DynamicFrameReader: ...


class GlueJobContext(LocalJobContext):
    """The `JobContext` on Glue: a LocalJobContext on S3, plus Glue's bookmark commit.

    State documents (transform/load bookmarks, run history) are the same documents in the same place,
    `<LAKE_ROOT>/_state`, so `totes status` and the library read them alike. `commit()` writes them,
    then calls `job.commit()` last: Glue's own bookmarks (the extract's JDBC reads) advance only when
    everything else of the run is durable. `job.init()` must already have been called.
    """

    def __init__(
        self,
        name: str,
        spark: SparkSession,
        settings: Settings,
        job: GlueJob,
        storage: Storage | None = None,
        cloudwatch: Any = None,
    ) -> None:
        self.job = job
        self._cloudwatch = cloudwatch
        super().__init__(name, spark, settings, storage=storage)

    def commit(self) -> None:
        super().commit()
        self.job.commit()

    publishes_metrics = True

    def publish_metrics(self, metrics: Sequence[Metric]) -> None:
        """Put `metrics` into CloudWatch under METRIC_NAMESPACE (the client: boto3's, by default)."""
        super().publish_metrics(metrics)
        publish_to_cloudwatch(self._cloudwatch or _cloudwatch_client(), metrics)


# The namespace of the project's own metrics: terraform's `local.metric_namespace` (main.tf), which
# the Glue role may publish to (iam.tf) and the alarms read (monitoring.tf); tests/test_terraform.py
# checks they agree.
METRIC_NAMESPACE = "TotesETL"
PUT_METRIC_BATCH = 20  # datapoints per put_metric_data (the long-standing limit; 1000 since 2023)


def publish_to_cloudwatch(client: Any, metrics: Sequence[Metric], now: datetime | None = None) -> None:
    """`put_metric_data` of `metrics`, all stamped `now` (default: the current time)."""
    stamp = now or datetime.now(UTC)
    data = [
        {
            "MetricName": m.name,
            "Value": m.value,
            "Unit": m.unit,
            "Timestamp": stamp,
            "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions],
        }
        for m in metrics
    ]
    for start in range(0, len(data), PUT_METRIC_BATCH):
        client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data[start : start + PUT_METRIC_BATCH])


def _cloudwatch_client() -> Any:
    import boto3

    return boto3.client("cloudwatch")  # the job's region (Glue sets AWS_REGION)


# The tables that grow with the business (millions of rows at 100x the real volumes): their first,
# full read is split into this many parallel JDBC queries on the primary key, the Glue twin of the
# local partitioned read (shared/jdbc/sources.py, docs/performance.md). Later reads are a few rows behind
# the bookmark: one query, since every split query would scan the table for the bookmark again.
PARALLEL_READ_TABLES = frozenset({"sales_order", "purchase_order", "transaction", "payment"})
GLUE_HASH_PARTITIONS = 8


def bookmarked_read_options(url: PgUrl, table: SourceTable, parallel: bool = False) -> dict[str, Any]:
    """Connection options of the extract's JDBC read with a Glue job bookmark on `last_updated`.

    `dbtable` is unquoted: table names come from the contract's allow-list, are lower case, and none
    is a reserved word in PostgreSQL (`transaction` is not reserved). With `parallel`, a big table
    is read by GLUE_HASH_PARTITIONS queries on `primary key % n` (`hashexpression`, an integer
    column, so PostgreSQL needs no hashing).
    """
    options: dict[str, Any] = {
        "url": url.jdbc_url,
        "user": url.user,
        "password": url.password,
        "dbtable": f"public.{table.name}",
        "jobBookmarkKeys": [BOOKMARK_KEY],
        "jobBookmarkKeysSortOrder": "asc",
    }
    if parallel and table.name in PARALLEL_READ_TABLES:
        options |= {"hashexpression": table.primary_key, "hashpartitions": str(GLUE_HASH_PARTITIONS)}
    return options


@dataclass(frozen=True)
class GlueReader:
    """The extract's read on Glue (an `extract.Reader`): native JDBC job bookmark, plus the look-back window.

    Glue tracks the bookmark (committed by `job.commit()`), so the increment carries none. With
    LOOKBACK_MINUTES > 0 a second plain JDBC read takes the rows with `last_updated` at most that many
    minutes before the previous committed extract started (`lookback_anchor`), outside the bookmark:
    rows committed late, with a timestamp Glue's bookmark has already passed. The union is
    de-duplicated by (primary key, last_updated). Costs: see docs/glue.md.
    """

    glue_context: GlueContextLike

    def __call__(self, ctx: JobContext, table: SourceTable) -> Increment:
        url = ctx.settings.require_totesys()
        frame = self.glue_context.create_dynamic_frame.from_options(
            connection_type="postgresql",
            # No committed extract yet: this is the full first read.
            connection_options=bookmarked_read_options(url, table, parallel=ctx.previous_run_id is None),
            transformation_ctx=extract.transformation_ctx(table.name),
        )
        source = frame.toDF()
        rows = _contract_rows(ctx.spark, table, source)
        columns = source.columns
        if ctx.settings.lookback_minutes:
            anchor = lookback_anchor(ctx.previous_run_id, datetime.now(UTC))
            since = lookback_start(anchor, ctx.settings.lookback_minutes)
            window = read_table(ctx.spark, url, table.name)
            columns = columns or window.columns  # an empty DynamicFrame may have no columns at all
            rows = union_versions(table, rows, window_rows(table, window, since))
        # Source columns outside the contract are not extracted, and said so, as the local reader does.
        return Increment(rows.persist(), None, extra_column_notes(table, columns))


def _contract_rows(spark: SparkSession, table: SourceTable, rows: DataFrame) -> DataFrame:
    # A DynamicFrame's schema comes from its records: one with no new rows may convert to a
    # DataFrame with no columns at all. That is "nothing new", not schema drift.
    if not rows.columns:
        return spark.createDataFrame([], table.spark_schema)
    return contract_columns(table, rows)


def lookback_anchor(previous_run_id: str | None, now: datetime) -> datetime:
    """Where the look-back window ends: the start of the previous committed extract, else now.

    A row Glue's bookmark skips had not committed when that run read (so it committed after the run
    started), yet its `last_updated` is behind the bookmark; `last_updated` is set inside the writing
    transaction, so it is no earlier than that start minus the transaction's duration. The window
    only has to cover the longest ToteSys transaction plus clock skew, whatever the schedule. Run ids
    are the UTC start times of runs (shared.lake.storage.new_run_id).
    """
    if previous_run_id:
        return datetime.strptime(previous_run_id, RUN_ID_FORMAT).replace(tzinfo=UTC)
    return now


def lookback_start(anchor: datetime, minutes: int) -> datetime:
    """The start of the look-back window, in UTC (ToteSys' `last_updated` is UTC wall-clock time).

    Aware, so that the Spark literal does not depend on the time zone of the machine it runs on.
    """
    return anchor.astimezone(UTC) - timedelta(minutes=minutes)


def lookback_rows(spark: SparkSession, url: PgUrl, table: SourceTable, since: datetime) -> DataFrame:
    """Every row of `table` with `last_updated >= since`, read outside Glue's bookmark (pushed down)."""
    return window_rows(table, read_table(spark, url, table.name), since)


def window_rows(table: SourceTable, source: DataFrame, since: datetime) -> DataFrame:
    """The contract's columns of the rows of `source` (a plain JDBC read) with `last_updated >= since`."""
    return contract_columns(table, source).where(F.col(BOOKMARK_KEY) >= F.lit(since))


def union_versions(table: SourceTable, *frames: DataFrame) -> DataFrame:
    """The union of `frames`, one row per version (primary key, last_updated)."""
    first, *rest = frames
    for frame in rest:
        first = first.unionByName(frame)
    return first.dropDuplicates([table.primary_key, BOOKMARK_KEY])


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def ship_ca_files(spark: SparkSession, settings: Settings, working_dir: Path | None = None) -> list[Path]:
    """Make every CA file the database URLs name by file name readable where each JDBC connection opens.

    pgjdbc opens `sslrootcert` as a plain file, relative to the JVM's working directory, on the
    driver (the probes, the warehouse transaction, Spark's schema lookup) and on every executor
    (the reads and the staging writes). Glue copies `--extra-files` into the driver's working
    directory (`working_dir`, default: the driver JVM's `user.dir`); `SparkContext.addFile` then
    has every executor fetch the file into its own working directory before it runs a task
    (Spark: added files go to SparkFiles' root, which on an executor is its working directory). So
    the one relative name in the URL resolves on every node. An absolute path is used as it is.
    Raises ConfigError naming the setting and `--extra-files` when the file is not there.
    """
    if working_dir is None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        working_dir = Path(str(jvm.java.lang.System.getProperty("user.dir")))
    shipped: list[Path] = []
    for url in (settings.totesys, settings.warehouse):
        if url is None or not url.sslrootcert or url.sslrootcert.startswith("/"):
            continue
        path = working_dir / url.sslrootcert
        if not path.is_file():
            raise ConfigError(
                f"{url.setting}: the CA file {url.sslrootcert!r} (sslrootcert) is not in the job's working "
                f"directory {working_dir}: give the job --extra-files s3://<scripts>/lib/{url.sslrootcert} "
                "(terraform/glue.tf does; `make package` builds it)"
            )
        if path not in shipped:
            spark.sparkContext.addFile(str(path))
            shipped.append(path)
    return shipped


def configure_session(spark: SparkSession) -> None:
    """The session settings `shared.local.spark.build_spark` gives the local runtime, on Glue's session."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    import_hot_classes(spark)


class GlueJobFailed(RuntimeError):
    """A Glue job run failed. The message is the job's one masked line: Glue makes it the run's
    ErrorMessage, which the failure email and `get-job-runs` show."""


def run_glue_job(
    name: str,
    args: Mapping[str, str],
    job: GlueJob,
    glue_context: GlueContextLike,
    secrets: Callable[[str], Any],
    storage: Storage | None = None,
    working_dir: Path | None = None,
) -> JobReport:
    """`job.init` first, then one registered job to its commit (which ends with `job.commit`).

    The job comes from the registry `totes run` uses too (shared/runtime/registry.py): the same databases
    checked first, the same notes kept, the same masking of a failure. On failure: one line on
    stderr, the run recorded as FAILED in the run history (when the context exists), and the
    masked line raised as GlueJobFailed so Glue marks the run FAILED. `working_dir` is where Glue put the
    `--extra-files` (default: the driver JVM's working directory; see `ship_ca_files`).
    """
    spec = job_spec(name)
    job.init(args["JOB_NAME"], args)
    settings: Settings | None = None
    ctx: GlueJobContext | None = None
    try:
        settings = settings_from_glue_args(args, secrets)
        spark = glue_context.spark_session
        configure_session(spark)
        ctx = GlueJobContext(name, spark, settings, job, storage=storage)
        ship_ca_files(spark, settings, working_dir)
        for url in spec.databases(settings):
            check_reachable(spark, url)
        run_registered(ctx, GlueReader(glue_context))  # records a failure itself
    except BaseException as exc:
        reason = failure_reason(exc, settings)
        print(f"totes {name} FAILED: {reason}", file=sys.stderr, flush=True)
        if ctx is not None and ctx.report.status != "FAILED":  # failed before the job ran
            with contextlib.suppress(Exception):  # the original error is what matters
                ctx.finish("FAILED", reason)
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: not a job failure
            raise
        # Glue shows an uncaught exception's text as the run's ErrorMessage, which the failure
        # email quotes, and logs its traceback: the original text may hold a password (a JDBC URL,
        # a driver message). Only the masked line leaves the job, without the original chained.
        raise GlueJobFailed(reason) from None
    print(json.dumps(ctx.report.to_json(), sort_keys=True, default=str), flush=True)
    return ctx.report


def main(job: str, argv: list[str]) -> None:
    """What `glue_jobs/<job>.py` calls on Glue: resolve arguments, start Glue, run `job` to its commit."""
    job_spec(job)  # an unknown job fails before Glue starts
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    try:
        args = getResolvedOptions(argv, glue_option_names(argv))
    except Exception as exc:
        print(f"totes {job} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise
    glue_context = GlueContext(SparkContext.getOrCreate())
    run_glue_job(job, args, Job(glue_context), glue_context, secrets_manager_reader())
