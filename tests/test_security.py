"""Security: no secret in the repository or its history, passwords masked in every message and in
the lake's logs, SQL identifiers only from the allow-list, TLS to PostgreSQL configurable.

The static checks (bandit over the code, pip-audit over the dependencies) are `make check`
(make/check.mk). docs/reliability.md lists what each test here proves.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from shared.config import PgUrl, Settings, parse_pg_url
from shared.contract.source import SOURCE_TABLES
from shared.jdbc.sources import NotAllowListed, SourceUnreachable, check_reachable, read_table
from shared.local import cli
from shared.local.workflow import JobFailed, one_line, redact, run_workflow

REPO = Path(__file__).resolve().parents[1]
SECRET = "Zq8-not-a-real-secret-9vX_4TtWq"  # what a leak of a password would look like


# --------------------------------------------------------------------------- the repository


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr  # 1: git grep found nothing
    return result.stdout


# A credential that looks real: private keys, AWS access keys, and passwords of 20+ characters
# in a URL or a password assignment (the test URLs in this repository use short, obviously fake
# ones such as "hunter2"; placeholders such as ${TOTESYS_PASSWORD} are not credentials).
LEAK_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}",
    r"postgres(ql)?://[^:/\s'\"]+:[^@\s'\"{}$<>]{20,}@",
    r"(?i)\bpassword['\"]?\s*[=:]\s*['\"][^'\"\s{}$<>]{20,}['\"]",
]


@pytest.fixture(scope="module")
def git_repo() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")


def tracked_text() -> dict[str, str]:
    """Every tracked text file as it is in the working tree (uncommitted edits included)."""
    out = {}
    for name in _git("ls-files", "-z").split("\0"):
        path = REPO / name
        if name and path.is_file() and path.stat().st_size < 2_000_000:
            data = path.read_bytes()
            if b"\0" not in data:
                out[name] = data.decode("utf-8", errors="replace")
    return out


def test_no_credential_in_tracked_files_or_in_history(git_repo) -> None:
    files = tracked_text()
    history = _git("log", "--all", "-p", "--no-color")
    assert files and history
    for pattern in LEAK_PATTERNS:
        assert [n for n, text in files.items() if re.search(pattern, text)] == [], pattern
        assert re.findall(pattern, history) == [], pattern
    assert _git("ls-files", "--", ".env", "docker/.env", "terraform/terraform.tfvars") == ""


def test_the_embedded_servers_passwords_are_nowhere_in_the_repository(git_repo, pg) -> None:
    stores = [pg.credentials_file, REPO / ".local" / "pg" / "credentials.json"]
    passwords = {
        entry["password"]
        for store in stores
        if store.is_file()
        for entry in json.loads(store.read_text(encoding="utf-8")).values()
    }
    assert passwords
    for password in passwords:
        assert _git("grep", "-F", "-l", "-e", password) == ""
        assert _git("log", "--all", "--oneline", f"-S{password}") == ""


# --------------------------------------------------------------------------- masking


def test_a_url_never_shows_its_password() -> None:
    url = parse_pg_url("TOTESYS_URL", f"postgresql://etl:{SECRET}@db.example:5432/totesys")
    assert SECRET not in repr(url) and SECRET not in url.masked and SECRET not in str(Settings("/x", url))
    assert url.masked == "postgresql://etl:***@db.example:5432/totesys"


@pytest.mark.parametrize(
    "text",
    [
        f"could not connect: postgresql://etl:{SECRET}@db:5432/totesys",
        f"FATAL connection options password={SECRET}&sslmode=require",
        f'secret document {{"username": "etl", "password": "{SECRET}"}}',
    ],
)
def test_one_line_masks_anything_shaped_like_a_password(text) -> None:
    line = one_line(RuntimeError(text + "\n\tat org.postgresql.Driver.connect(Driver.java:1)"))
    assert SECRET not in line and "***" in line and "\n" not in line


def test_redact_masks_the_configured_passwords_anywhere(tmp_path) -> None:
    url = parse_pg_url("WAREHOUSE_URL", f"postgresql://etl:{SECRET}@db:5432/warehouse")
    settings = Settings(str(tmp_path), totesys=url, warehouse=url)
    assert redact(f"weird driver text with {SECRET} inside", settings) == "weird driver text with *** inside"


def test_a_failing_job_keeps_no_password_in_the_message_or_the_lake(spark, tmp_path, monkeypatch) -> None:
    url = parse_pg_url("TOTESYS_URL", f"postgresql://etl:{SECRET}@127.0.0.1:9/totesys")
    settings = Settings(str(tmp_path / "lake"), totesys=url, warehouse=url, catalog_database="sec")

    def leaky_extract(ctx, read):
        raise RuntimeError(f"driver said: cannot use {url.conninfo} (password {SECRET})")

    monkeypatch.setattr("shared.local.workflow.check_reachable", lambda spark, url: None)
    monkeypatch.setattr("shared.jobs.extract.run", leaky_extract)
    with pytest.raises(JobFailed) as failed:
        run_workflow(spark, settings, ["extract"])
    assert SECRET not in str(failed.value) and "***" in str(failed.value)
    lake_files = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert lake_files  # the run history of the FAILED run
    for path in lake_files:
        assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path


def test_a_wrong_password_fails_in_one_line_without_echoing_it(pg, spark, capsys, tmp_path) -> None:
    database = f"t_{uuid.uuid4().hex[:8]}"
    pg.create_database(database)
    good = parse_pg_url("X", pg.url(database))
    wrong = f"postgresql://{good.user}:{SECRET}@{good.host}:{good.port}/{database}"
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        code = cli.main(
            ["run", "--totesys-url", wrong, "--warehouse-url", wrong, "--lake-root", str(tmp_path / "lake")]
        )
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", saved)
    out, err = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    assert len(err.strip().splitlines()) == 1 and "TOTESYS_URL" in err and "password authentication" in err
    assert SECRET not in out + err
    pg.drop_database(database)


def test_the_servers_log_holds_no_password(pg) -> None:
    passwords = [e["password"] for e in json.loads(pg.credentials_file.read_text(encoding="utf-8")).values()]
    log = pg.log_file.read_text(encoding="utf-8", errors="replace") if pg.log_file.exists() else ""
    assert all(p not in log for p in passwords)


# --------------------------------------------------------------------------- SQL from the allow-list


@pytest.mark.parametrize(
    "name", ['sales_order"; DROP TABLE staff; --', "pg_authid", "_prisma_migrations", "SALES_ORDER"]
)
def test_only_contract_tables_reach_sql(spark, name) -> None:
    url = PgUrl("TOTESYS_URL", "127.0.0.1", 9, "totesys", "etl", SECRET)
    with pytest.raises(NotAllowListed, match="allow-list"):
        read_table(spark, url, name)


def test_every_contract_identifier_is_a_plain_lower_case_name() -> None:
    plain = re.compile(r"^[a-z][a-z0-9_]*$")
    for table in SOURCE_TABLES.values():
        assert plain.match(table.name) and all(plain.match(c) for c in table.column_names), table.name


# --------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_sslmode_reaches_the_jdbc_driver_and_libpq(pg, spark, mode) -> None:
    database = f"t_{uuid.uuid4().hex[:8]}"
    pg.create_database(database)
    try:
        url = parse_pg_url("WAREHOUSE_URL", f"{pg.url(database)}?sslmode={mode}")
        assert url.jdbc_url.endswith(f"?sslmode={mode}") and url.conninfo.endswith(f"?sslmode={mode}")
        with psycopg.connect(pg.url(database)) as conn:
            ssl_on = conn.execute("SHOW ssl").fetchone() == ("on",)
        if ssl_on:  # a server with TLS: the connection is encrypted
            check_reachable(spark, url)
        else:  # the embedded server has no TLS: asking for it must fail, and say why
            with pytest.raises(SourceUnreachable, match="(?i)ssl"):
                check_reachable(spark, url)
            with pytest.raises(psycopg.OperationalError, match="(?i)ssl"):
                psycopg.connect(url.conninfo, connect_timeout=5).close()
        plain = parse_pg_url("WAREHOUSE_URL", f"{pg.url(database)}?sslmode=disable")
        check_reachable(spark, plain)
    finally:
        pg.drop_database(database)
