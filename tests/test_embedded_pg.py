"""The embedded PostgreSQL: a real server on 127.0.0.1, its roles, and its lifecycle.

Access tests use the session server (`pg`, never stopped here). Lifecycle tests (restart, a second
process's view, SIGKILL recovery, a broken config) run their own cluster in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from shared.local.embedded_pg import CLUSTER_HOME, READER, SUPERUSER, EmbeddedPostgres, EmbeddedPostgresError

pytestmark = pytest.mark.integration  # every test starts or uses a PostgreSQL server


def _postmaster_pid(server: EmbeddedPostgres) -> int:
    return int((server.root / "data" / "postmaster.pid").read_text().split()[0])


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {timeout} s")


# ----------------------------------------------------------------------------- the session server


def test_url_reaches_the_server_over_tcp_as_the_superuser(pg: EmbeddedPostgres) -> None:
    url = pg.url("postgres")
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.username) == (
        "postgresql",
        "127.0.0.1",
        pg.port,
        SUPERUSER,
    )
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT host(inet_server_addr()), inet_server_port(), current_user, "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row == ("127.0.0.1", pg.port, SUPERUSER, True, "UTF8")


def test_server_accepts_only_password_logins_from_localhost(pg: EmbeddedPostgres) -> None:
    with psycopg.connect(pg.url("postgres")) as conn:
        rules = conn.execute(
            "SELECT type, database, user_name, address, auth_method FROM pg_hba_file_rules"
            " ORDER BY rule_number"
        ).fetchall()
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'unix_socket_directories', 'max_connections', 'fsync')"
            ).fetchall()
        )
    assert rules == [("host", ["all"], ["all"], "127.0.0.1", "scram-sha-256")]
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": "",
        "max_connections": "100",
        "fsync": "on",
    }
    wrong = f"postgresql://{SUPERUSER}:not-the-password@127.0.0.1:{pg.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_credentials_are_random_and_private(pg: EmbeddedPostgres) -> None:
    path = pg.root / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = json.loads(path.read_text())
    users = {entry["user"]: entry["password"] for entry in creds.values()}
    assert set(users) == {SUPERUSER, READER}
    assert users[SUPERUSER] != users[READER]
    assert all(len(password) >= 24 for password in users.values())


def test_reader_role_reads_everything_and_writes_nothing(pg: EmbeddedPostgres, fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as admin:
        admin.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        admin.execute("INSERT INTO t VALUES (1, 'O''Hara')")
    database = urlsplit(fresh_db).path.lstrip("/")
    reader_url = pg.url(database, user=READER)
    assert urlsplit(reader_url).username == READER
    with psycopg.connect(reader_url, autocommit=True) as reader:
        assert reader.execute("SELECT id, name FROM t").fetchall() == [(1, "O'Hara")]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("INSERT INTO t VALUES (2, 'x')")
        # Even with read-only transactions switched off, the role has no write privilege.
        reader.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("INSERT INTO t VALUES (2, 'x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("CREATE TABLE u (id int)")
    with psycopg.connect(fresh_db) as admin:
        assert admin.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_url_rejects_an_unknown_role(pg: EmbeddedPostgres) -> None:
    with pytest.raises(EmbeddedPostgresError, match="unknown role 'nobody'"):
        pg.url("postgres", user="nobody")


def test_create_and_drop_database_are_idempotent(pg: EmbeddedPostgres) -> None:
    def exists() -> bool:
        with psycopg.connect(pg.url("postgres")) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = 'idem_db'").fetchone() is not None

    pg.drop_database("idem_db")
    pg.create_database("idem_db")
    pg.create_database("idem_db")
    assert exists()
    open_session = psycopg.connect(pg.url("idem_db"), autocommit=True)
    try:
        pg.drop_database("idem_db")  # WITH (FORCE): an open session does not block the drop...
        with pytest.raises(psycopg.OperationalError):
            open_session.execute("SELECT 1")  # ...it is terminated
    finally:
        open_session.close()
    pg.drop_database("idem_db")
    assert not exists()
    with pytest.raises(ValueError, match="invalid database name"):
        pg.create_database('x"; DROP DATABASE postgres; --')


def test_server_runs_unprivileged(pg: EmbeddedPostgres) -> None:
    uid = os.stat(f"/proc/{_postmaster_pid(pg)}").st_uid
    if os.geteuid() == 0:
        assert uid != 0, "PostgreSQL must not run as root"
        assert (pg.root / "data").stat().st_uid == uid
    else:
        assert uid == os.geteuid()


# ----------------------------------------------------------------------------- lifecycle, own cluster


@pytest.fixture(scope="module")
def own_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lifecycle") / "cluster"
    try:
        yield root
    finally:
        EmbeddedPostgres(root).destroy()


def test_start_is_idempotent_and_shared_by_a_second_instance(own_root: Path) -> None:
    first = EmbeddedPostgres(own_root)
    started = time.monotonic()
    port = first.start()
    assert time.monotonic() - started < 30
    assert first.start() == port
    assert first.is_running() and first.port == port
    with psycopg.connect(first.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
        conn.execute("INSERT INTO kept VALUES (1)")

    second = EmbeddedPostgres(own_root)  # e.g. a later `totes` process over the same folder
    assert second.is_running()
    assert second.port == port
    assert second.start() == port
    assert second.url("postgres") == first.url("postgres")
    assert int((own_root / "port").read_text()) == port


def test_stop_then_start_reuses_the_port_and_keeps_data(own_root: Path) -> None:
    server = EmbeddedPostgres(own_root)
    port = server.start()
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (id int)")
        before = conn.execute("SELECT count(*) FROM kept").fetchone()
    server.stop()
    assert not server.is_running()
    assert not EmbeddedPostgres(own_root).is_running()
    server.stop()  # already stopped: no error
    assert server.start() == port
    with psycopg.connect(server.url("postgres")) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == before


def test_restart_moves_to_a_new_port_when_the_old_one_is_taken(own_root: Path) -> None:
    server = EmbeddedPostgres(own_root)
    old = server.start()
    server.stop()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old port may be in TIME_WAIT
    try:
        squatter.bind(("127.0.0.1", old))
        squatter.listen()
        new = server.start()
        assert new != old
        with psycopg.connect(server.url("postgres")) as conn:
            assert conn.execute("SELECT inet_server_port()").fetchone() == (new,)
        assert int((own_root / "port").read_text()) == new
    finally:
        squatter.close()


def test_start_recovers_after_the_server_was_killed(own_root: Path) -> None:
    server = EmbeddedPostgres(own_root)
    server.start()
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survives (id int)")
        conn.execute("INSERT INTO survives VALUES (42)")
    pid = _postmaster_pid(server)
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    assert (own_root / "data" / "postmaster.pid").exists(), "the kill should leave a stale pid file"
    assert not server.is_running()

    again = EmbeddedPostgres(own_root)
    again.start()
    assert _postmaster_pid(again) != pid
    with psycopg.connect(again.url("postgres")) as conn:  # committed data survived the crash
        assert conn.execute("SELECT id FROM survives").fetchall() == [(42,)]


def test_a_server_that_cannot_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "broken")
    server.start()
    server.stop()
    with open(server.root / "data" / "postgresql.conf", "a") as conf:
        conf.write("shared_buffers = 'lots'\n")
    with pytest.raises(EmbeddedPostgresError) as failure:
        server.start()
    message = str(failure.value)
    assert "did not start" in message
    assert "server.log" in message and "shared_buffers" in message
    assert not server.is_running()
    server.destroy()
    assert not server.root.exists()


def test_server_survives_its_root_becoming_unreachable(own_root: Path) -> None:
    # pytest resets /tmp/pytest-of-<user> to 0700 whenever another session starts; as root, the
    # server runs as another user and must not depend on reaching the folder it was given.
    server = EmbeddedPostgres(own_root)
    server.start()
    parent = own_root.parent
    mode = stat.S_IMODE(parent.stat().st_mode)
    parent.chmod(0o700)
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # rewrites pg_control: PANICs if the data folder is unreachable
            conn.execute("CREATE TABLE IF NOT EXISTS after_chmod (id int)")
        server.stop()
        server.start()
        with psycopg.connect(server.url("postgres")) as conn:
            assert conn.execute("SELECT count(*) FROM after_chmod").fetchone() == (0,)
    finally:
        parent.chmod(mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="clusters are relocated only when running as root")
def test_as_root_the_cluster_lives_outside_root_and_orphans_are_collected(tmp_path: Path) -> None:
    orphan = CLUSTER_HOME / "gone-000000000000-000000"
    (orphan / "data").mkdir(parents=True, exist_ok=True)
    (orphan / "owner").write_text(f"{tmp_path / 'no-such-root'}\n")
    old = time.time() - 3600
    os.utime(orphan / "owner", (old, old))

    server = EmbeddedPostgres(tmp_path / "cluster")
    server.start()
    data = server.root / "data"
    cluster = data.resolve().parent
    try:
        assert data.is_symlink() and cluster.parent == CLUSTER_HOME
        assert (cluster / "owner").read_text().strip() == str(server.root)
        assert stat.S_IMODE(CLUSTER_HOME.stat().st_mode) & 0o077 == 0o011  # traversable, not listable
        assert not orphan.exists()
    finally:
        server.destroy()
    assert not cluster.exists() and not server.root.exists()
