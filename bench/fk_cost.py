"""How much of the load's apply step is foreign-key checking (docs/performance.md).

    .venv/bin/python -m bench.fk_cost [--scale 100]

On the warehouse a `make bench` run left (`.local/bench`, database warehouse_s<scale>), inserts
fact_payment's rows into an empty copy of the table, exactly as the load does (`insert_facts_sql`),
once with the table's foreign keys and once without; each in its own transaction, rolled back.
"""

from __future__ import annotations

import argparse
import time

import psycopg

from bench.run import HOME, _db_suffix
from shared.jdbc.warehouse import insert_facts_sql, table_ddl
from shared.local.embedded_pg import EmbeddedPostgres

TABLE = "fact_payment"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.fk_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100.0)
    args = parser.parse_args(argv)
    server = EmbeddedPostgres(HOME / "pg")
    server.start()
    with psycopg.connect(server.url(f"warehouse_s{_db_suffix(args.scale)}")) as conn:
        for foreign_keys in (True, False):
            conn.execute("CREATE SCHEMA IF NOT EXISTS etl_staging")
            conn.execute(f"CREATE TABLE etl_staging.{TABLE} AS SELECT * FROM {TABLE}")
            conn.execute(f"ALTER TABLE {TABLE} RENAME TO {TABLE}_bench_original")
            for statement in table_ddl(TABLE):
                if not foreign_keys:
                    lines = [line for line in statement.split("\n") if "FOREIGN KEY" not in line]
                    statement = "\n".join(lines).replace(",\n)", "\n)")
                # index names are per schema: the original's still exists under the renamed table
                conn.execute(statement.replace(f'"{TABLE}_version_key"', f'"{TABLE}_version_key_bench"'))
            started = time.monotonic()
            rows = conn.execute(insert_facts_sql(TABLE)).rowcount
            seconds = time.monotonic() - started
            print(
                f"{TABLE}: foreign keys {'on ' if foreign_keys else 'off'}: {rows:,} rows in {seconds:.1f} s"
            )
            conn.rollback()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
