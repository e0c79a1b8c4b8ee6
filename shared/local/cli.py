"""`totes`: the command line for people (and `make run`).

    totes run [--job extract|transform|load]   one workflow run (or one job)
    totes schedule [--every MIN] [--timeout MIN] the workflow every 20 minutes, alerts by email
    totes dashboard [--port N] [--open]          a local web page over the warehouse and the runs
    totes seed [--from-parquet DIR | --scale N] [--if-empty]
    totes simulate [--sales-orders N ...]      changes like the live ToteSys makes
    totes status [--json]                        bookmarks, last runs, row counts, quarantine, freshness
    totes reset --table T                        the next run re-extracts table T whole
    totes rewind --table T --to TIMESTAMP        the next run re-extracts T from TIMESTAMP on
    totes backfill --since TS [--until TS] [--table T ...]   ... re-extracts a time window
    totes query "SQL" | --saved NAME             SQL over the processed lake (DuckDB; --engine spark)
    totes db start|stop|urls|destroy             the embedded PostgreSQL

Settings come from the environment (TOTESYS_URL, WAREHOUSE_URL, LAKE_ROOT, CATALOG_DATABASE,
LOOKBACK_MINUTES), overridable by flags. Without TOTESYS_URL / WAREHOUSE_URL an embedded PostgreSQL
under `.local/pg` serves both databases. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from shared.config import ConfigError, PgUrl, Settings, parse_pg_url

if TYPE_CHECKING:  # imported where used: `totes --help` and a config error start neither
    from pyspark.sql import SparkSession

    from shared.local.embedded_pg import EmbeddedPostgres

LOCAL_HOME = Path(os.environ.get("TOTES_HOME", ".local"))
EXIT_FAILED = 1
EXIT_USAGE = 2


def _embedded() -> EmbeddedPostgres:
    from shared.local.embedded_pg import EmbeddedPostgres

    return EmbeddedPostgres(LOCAL_HOME / "pg")


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    for flag, var in (
        ("totesys_url", "TOTESYS_URL"),
        ("warehouse_url", "WAREHOUSE_URL"),
        ("lake_root", "LAKE_ROOT"),
        ("catalog_database", "CATALOG_DATABASE"),
    ):
        value = getattr(args, flag, None)
        if value:
            env[var] = value
    return Settings.from_env(env, default_lake=str(LOCAL_HOME / "lake"))


def _with_databases(settings: Settings) -> Settings:
    """Resolve unset database URLs to the embedded server (started if needed)."""
    if settings.totesys and settings.warehouse:
        return settings
    server = _embedded()
    server.start()
    for name in ("totesys", "warehouse"):
        server.create_database(name)
    return settings.with_databases(
        parse_pg_url("TOTESYS_URL", server.url("totesys", user="totesys_reader")),
        parse_pg_url("WAREHOUSE_URL", server.url("warehouse")),
    )


def _writable_totesys(args: argparse.Namespace) -> PgUrl:
    """The database seed/simulate write to: `--url` if given, else the embedded `totesys`.

    Never TOTESYS_URL: the pipeline only ever reads the source it names (production credentials
    are read-only), so writing to another database must be asked for explicitly.
    """
    if args.url:
        return parse_pg_url("--url", args.url)
    server = _embedded()
    server.start()
    server.create_database("totesys")
    return parse_pg_url("embedded totesys", server.url("totesys"))


def _spark(settings: Settings) -> SparkSession:
    from shared.local.spark import build_spark

    return build_spark(settings.catalog_dir)


def cmd_run(args: argparse.Namespace) -> int:
    from shared.local.summary import job_progress, render_reports
    from shared.local.workflow import JOBS, JobFailed, run_workflow

    settings = _with_databases(_settings(args))
    jobs = [args.job] if args.job else list(JOBS)
    print(f"totes run: {' -> '.join(jobs)}")
    print(f"  ToteSys   {settings.require_totesys().masked}")
    print(f"  warehouse {settings.require_warehouse().masked}")
    print(f"  lake      {settings.lake_root}  (catalog database '{settings.catalog_database}')")
    started = time.monotonic()
    spark = _spark(settings)
    print(f"  spark ready in {time.monotonic() - started:.1f} s")
    try:
        reports = run_workflow(spark, settings, jobs, progress=job_progress)
    except JobFailed as failed:
        if failed.reports:
            print("\n" + render_reports(failed.reports))
        print(f"FAILED: {failed}", file=sys.stderr)
        return EXIT_FAILED
    print("\n" + render_reports(reports))
    print(f"total {time.monotonic() - started:.1f} s (Spark start-up included)")
    print(
        "\nLook at the result:\n"
        "  .venv/bin/totes status\n"
        '  .venv/bin/totes query "SELECT * FROM fact_sales_order ORDER BY created_date DESC LIMIT 5"\n'
        f"  psql {settings.require_warehouse().masked}   (the warehouse; `totes db urls` shows the embedded passwords)\n"
        "Make changes like the live ToteSys, then run again (incremental):\n"
        "  .venv/bin/totes simulate --paid-batch --edits 3 && make run"
    )
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from shared.local import schedule
    from shared.local.alerts import AlertConfig, Alerter

    settings = _settings(args)
    alerts = AlertConfig.from_env(os.environ, smtp_url=args.smtp_url, alert_email=args.alert_email)
    if args.every <= 0 or args.timeout < 0:
        raise ConfigError("--every must be above 0 minutes and --timeout at least 0 (0: no timeout)")
    resolved = _with_databases(settings)  # to mask the passwords in what a failed run printed
    env = dict(os.environ)  # the child `totes run` gets the settings through its environment
    for flag, var in (("totesys_url", "TOTESYS_URL"), ("warehouse_url", "WAREHOUSE_URL")):
        if getattr(args, flag, None):
            env[var] = getattr(args, flag)
    env["LAKE_ROOT"], env["CATALOG_DATABASE"] = settings.lake_root, settings.catalog_database
    log_dir = schedule.log_dir_for(settings, LOCAL_HOME)
    lock = schedule.scheduler_lock(log_dir)
    timeout = timedelta(minutes=args.timeout) if args.timeout else None
    run = schedule.WorkflowProcess(resolved, env, log_dir, timeout=timeout)
    alerter = None
    if alerts is not None:
        context = f"lake:    {settings.lake_root}\nhost:    {socket.gethostname()}"
        alerter = Alerter(alerts, log_dir / "alert_state.json", context=context)
    scheduler = schedule.Scheduler(
        run, every=timedelta(minutes=args.every), log=schedule.ScheduleLog(log_dir), alerter=alerter
    )
    schedule.install_stop_signals(scheduler, run)
    first = schedule.next_tick(datetime.now(UTC), scheduler.every)
    print(f"totes schedule: every {args.every:g} min, first run at {first:%H:%M:%S} UTC")
    print(f"  lake      {settings.lake_root}")
    print(f"  timeout   {f'{args.timeout:g} min per run' if timeout else 'none'}")
    print(
        f"  alerts    to {', '.join(alerts.recipients)} via {alerts.smtp.masked}"
        if alerts
        else "  alerts    off (set ALERT_EMAIL and SMTP_URL)"
    )
    print(f"  log       {log_dir / 'schedule.jsonl'} (each run's output in {log_dir / 'runs'})")
    print("  SIGTERM or Ctrl-C stops it after the run in progress (twice: now)", flush=True)
    try:
        scheduler.run_forever()
    finally:
        lock.close()
    print(f"totes schedule: stopped after {scheduler.ticks} ticks", flush=True)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from shared.local.dashboard.server import serve

    settings = _with_databases(_settings(args))
    try:
        serve(settings, args.port, open_browser=args.open)
    except KeyboardInterrupt:
        print("totes dashboard: stopped")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from shared.local import totesys

    url = _writable_totesys(args).conninfo
    totesys.create_schema(url)
    if args.if_empty and any(totesys.table_counts(url).values()):
        print("totes seed: ToteSys already has data; left as it is (--if-empty)")
        return 0
    if any(totesys.table_counts(url).values()):
        print("totes seed: ToteSys is not empty; refusing to add a second copy", file=sys.stderr)
        return EXIT_FAILED
    started = time.monotonic()
    if args.from_parquet:
        counts = totesys.seed_from_parquet(url, Path(args.from_parquet))
    else:
        counts = totesys.seed_synthetic(url, scale=args.scale, seed=args.seed)
    print(f"totes seed: {sum(counts.values()):,} rows in {time.monotonic() - started:.1f} s")
    for table, count in sorted(counts.items()):
        print(f"  {table:<16}{count:>10,}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from shared.local import totesys

    url = _writable_totesys(args).conninfo
    done = totesys.simulate(
        url,
        sales_orders=args.sales_orders,
        purchase_orders=args.purchase_orders,
        paid_batch=args.paid_batch,
        edits=args.edits,
        seed=args.seed,
    )
    print("totes simulate: " + ", ".join(f"{k} {v}" for k, v in done.items()))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from shared.local import status

    settings = _with_databases(_settings(args))
    print(
        json.dumps(status.collect(settings), indent=2, default=str) if args.json else status.render(settings)
    )
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    """`totes reset`, `totes rewind`, `totes backfill`: change the extract's bookmarks (shared/local/state_ops.py)."""
    from shared.lake.layout import LakeLayout
    from shared.lake.storage import LakeLocked
    from shared.local import state_ops

    settings = _settings(args)
    try:
        if args.command == "reset":
            changes = state_ops.reset(settings, args.table)
        elif args.command == "rewind":
            changes = state_ops.rewind(settings, args.table, state_ops.parse_timestamp(args.to, "--to"))
        else:
            since = state_ops.parse_timestamp(args.since, "--since")
            until = state_ops.parse_timestamp(args.until, "--until") if args.until else None
            changes = state_ops.backfill(settings, since, until, args.table or ())
    except LakeLocked as exc:
        print(f"totes {args.command}: refused, nothing changed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"totes {args.command}: extract bookmarks in {LakeLayout.of(settings).bookmark(state_ops.EXTRACT_JOB)}"
    )
    for change in changes:
        print(change.render())
    if any(change.changed for change in changes):
        print(
            "The next `totes run` (or `totes schedule` tick) re-extracts; `totes status` shows the bookmarks."
        )
    else:
        print("Nothing to change.")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from shared.local import query

    settings = _settings(args)
    if args.list_saved:
        for name, path in query.saved_queries().items():
            print(f"{name:<40}{query.description(path.read_text(encoding='utf-8'))}")
        return 0
    if (args.sql is None) == (args.saved is None):
        raise ConfigError('give either SQL ("SELECT ...") or --saved NAME (--list-saved lists them)')
    if args.engine == "spark" and (args.saved or args.as_of):
        raise ConfigError("--saved and --as-of run on the DuckDB engine (the saved queries are Athena SQL)")
    if args.engine == "duckdb":
        as_of = _date(args.as_of) if args.as_of else None
        sql = args.sql if args.sql is not None else query.saved_query(args.saved)
        result = query.run_sql(settings, query.athena_to_duckdb(query.with_as_of(sql, as_of)))
        print(query.render(result, args.limit))
        return 0
    spark = _spark(settings)
    if not spark.catalog.databaseExists(settings.catalog_database):
        raise ConfigError(
            f"catalog database '{settings.catalog_database}' does not exist yet: run `totes run` first"
        )
    spark.catalog.setCurrentDatabase(settings.catalog_database)
    spark.sql(args.sql).show(n=args.limit, truncate=False)
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--as-of must be a date YYYY-MM-DD (got {value!r})") from None


def cmd_db(args: argparse.Namespace) -> int:
    server = _embedded()
    if args.action == "stop":
        server.stop()
        print("embedded PostgreSQL stopped")
        return 0
    if args.action == "destroy":
        server.destroy()
        print("embedded PostgreSQL stopped and its data deleted")
        return 0
    server.start()
    for name in ("totesys", "warehouse"):
        server.create_database(name)
    print(f"embedded PostgreSQL on 127.0.0.1:{server.port} (data in {LOCAL_HOME / 'pg'})")
    if args.action == "urls":
        print(f"TOTESYS_URL={server.url('totesys', user='totesys_reader')}")
        print(f"WAREHOUSE_URL={server.url('warehouse')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="totes", description="Terrific Totes ETL: ToteSys -> lake -> warehouse"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--totesys-url", help="postgresql:// URL of ToteSys (env TOTESYS_URL)")
    common.add_argument("--warehouse-url", help="postgresql:// URL of the warehouse (env WAREHOUSE_URL)")
    common.add_argument("--lake-root", help="local folder or s3://bucket/prefix (env LAKE_ROOT)")
    common.add_argument("--catalog-database", help="catalog database name (env CATALOG_DATABASE)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[common], help="one workflow run: extract -> transform -> load")
    p.add_argument("--job", choices=["extract", "transform", "load"], help="run only this job")
    p.set_defaults(func=cmd_run)

    writable = argparse.ArgumentParser(add_help=False)
    writable.add_argument(
        "--url",
        help="postgresql:// URL of the database to write (default: the embedded totesys; never TOTESYS_URL)",
    )
    p = sub.add_parser(
        "schedule", parents=[common], help="run the workflow every 20 minutes on the clock, alert on failure"
    )
    p.add_argument("--every", type=float, default=20.0, metavar="MINUTES", help="cadence (default 20)")
    p.add_argument(
        "--timeout", type=float, default=60.0, metavar="MINUTES", help="per run, then killed (0: none)"
    )
    p.add_argument("--alert-email", help="who is emailed when runs fail and recover (env ALERT_EMAIL)")
    p.add_argument("--smtp-url", help="smtp://[user:pass@]host[:port] or smtps://... (env SMTP_URL)")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("seed", parents=[writable], help="create and fill a ToteSys database")
    p.add_argument("--from-parquet", metavar="DIR", help="load a snapshot (one Parquet file per table)")
    p.add_argument("--scale", type=float, default=1.0, help="synthetic volume, 1 = the real sizes")
    p.add_argument("--seed", type=int, default=42, help="random seed for synthetic data")
    p.add_argument("--if-empty", action="store_true", help="do nothing if ToteSys already has rows")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("simulate", parents=[writable], help="apply changes like the live ToteSys")
    p.add_argument("--sales-orders", type=int, default=21)
    p.add_argument("--purchase-orders", type=int, default=9)
    p.add_argument("--paid-batch", action="store_true", help="run the daily paid-payments batch")
    p.add_argument("--edits", type=int, default=0, help="updates to existing rows")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "status", parents=[common], help="bookmarks, last runs, row counts, quarantine, freshness per table"
    )
    p.add_argument(
        "--json", action="store_true", help="the same as JSON (keys: shared/local/freshness.py, status.py)"
    )
    p.set_defaults(func=cmd_status)

    lake_only = argparse.ArgumentParser(add_help=False)
    lake_only.add_argument("--lake-root", help="local folder (env LAKE_ROOT)")
    table_help = "a ToteSys table (repeat for several)"
    p = sub.add_parser(
        "reset",
        parents=[lake_only],
        help="remove a table's extract bookmark: the next run re-extracts it whole",
    )
    p.add_argument("--table", action="append", required=True, metavar="T", help=table_help)
    p.set_defaults(func=cmd_state)
    p = sub.add_parser(
        "rewind",
        parents=[lake_only],
        help="set a table's extract bookmark back to a time: re-extract from it",
    )
    p.add_argument("--table", action="append", required=True, metavar="T", help=table_help)
    p.add_argument(
        "--to", required=True, metavar="TIMESTAMP", help="UTC unless it has a zone, e.g. 2024-11-14T09:00"
    )
    p.set_defaults(func=cmd_state)
    p = sub.add_parser(
        "backfill",
        parents=[lake_only],
        help="re-extract the rows changed in [since, until) on the next run, keeping the bookmarks",
    )
    p.add_argument("--since", required=True, metavar="TIMESTAMP", help="UTC unless it has a zone")
    p.add_argument("--until", metavar="TIMESTAMP", help="end of the window, excluded (default: none)")
    p.add_argument("--table", action="append", metavar="T", help=f"{table_help} (default: every table)")
    p.set_defaults(func=cmd_state)

    p = sub.add_parser("query", parents=[common], help="SQL over the processed lake (catalog tables)")
    p.add_argument("sql", nargs="?", help="SQL naming the catalog's tables (fact_sales_order, dim_staff ...)")
    p.add_argument("--limit", type=int, default=50, help="rows shown (default 50)")
    p.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="duckdb (default: the published Parquet, instant) or spark (Spark SQL through the catalog)",
    )
    p.add_argument("--saved", metavar="NAME", help="run an Athena saved query (terraform/queries/NAME.sql)")
    p.add_argument("--list-saved", action="store_true", help="list the saved queries")
    p.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="the day current_date stands for (e.g. a snapshot's)"
    )
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "dashboard", parents=[common], help="a local web page: sales, payments, pipeline health"
    )
    p.add_argument("--port", type=int, default=8050, help="on 127.0.0.1 (default 8050; 0: any free port)")
    p.add_argument("--open", action="store_true", help="open it in the default browser")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("db", help="the embedded PostgreSQL")
    p.add_argument("action", choices=["start", "stop", "urls", "destroy"])
    p.set_defaults(func=cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"totes: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line, never a Java stack trace
        from shared.local.workflow import one_line

        print(f"totes: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
