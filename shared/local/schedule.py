"""`totes schedule`: the workflow on the clock, the local twin of the Glue trigger `cron(0/20 * * * ? *)`.

    ticks      every `--every` minutes (default 20) counted from midnight UTC, so :00, :20, :40; a
               cadence that does not divide an hour keeps even spacing across hours (cron restarts
               at :00 each hour)
    one at a time  a tick that falls while a run is still going is skipped and logged as SKIPPED;
               so is a tick at which another process holds the lake's run lock (a manual `totes run`)
    each run   `totes run` in a child process of its own session, with a `--timeout`: a run past it
               is killed (SIGTERM, then SIGKILL) and the next one recovers, the jobs are crash-safe
    failures   logged, alerted once by email (shared/local/alerts.py), and the schedule carries on
    stopping   SIGTERM or Ctrl-C: the run in progress finishes (its child is in its own session, so
               Ctrl-C in the terminal does not reach it), then the scheduler exits 0; a second signal
               stops the run too (killed, left for the next run to recover)

Why a child process per run rather than the workflow in this process: a run can then be timed out
and killed without killing the scheduler, a hung JVM or a leak ends with its run, and every run is
exactly the one-shot `totes run`. Its output goes to `<log dir>/runs/<tick>.log`; what it did is read
back from the run records the jobs write (`<LAKE_ROOT>/_state/runs/*.json`), the same source of truth
as `totes status`.

`Scheduler` takes its clock and its run function as arguments, so tests drive it with a fake clock
and a fake run (tests/test_schedule.py); `WorkflowProcess` is the real run function.
The log: `<log dir>/schedule.jsonl`, one JSON object per tick; the log dir is
`<LAKE_ROOT>/_state/schedule` for a local lake, `$TOTES_HOME/schedule` for a lake on S3.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, TextIO

from shared.config import Settings, is_s3
from shared.lake.layout import LakeLayout
from shared.local.alerts import Alerter, Failure
from shared.runtime.registry import JOBS, job_spec, redact

DEFAULT_EVERY_MINUTES = 20.0  # terraform/glue.tf: cron(0/20 * * * ? *)
DEFAULT_TIMEOUT_MINUTES = 60.0
KILL_GRACE_SECONDS = 30.0  # after SIGTERM, before SIGKILL
KEEP_RUN_LOGS = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What shared.lake.storage.run_lock says when another process holds the lake.
LAKE_LOCKED = "another run is already using this lake"

Status = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "SKIPPED"]


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait `seconds` or until `stop` is set; True if stopped."""
        ...


class SystemClock:
    """The real clock; a wait ends early when a stop is requested (signal handlers set it)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(seconds, 0.0))


def next_tick(after: datetime, every: timedelta) -> datetime:
    """The first tick strictly after `after`: multiples of `every` counted from midnight UTC
    (ticks of a cadence dividing a day fall at the same times every day: 20 min -> :00, :20, :40)."""
    midnight = after.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    periods = (after - midnight) // every
    return midnight + (periods + 1) * every


def ticks_between(start: datetime, end: datetime, every: timedelta) -> Iterator[datetime]:
    """Ticks t with start < t <= end."""
    tick = next_tick(start, every)
    while tick <= end:
        yield tick
        tick = next_tick(tick, every)


def tick_id(tick: datetime) -> str:
    return tick.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------------------------
# What one scheduled run did
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """One tick's result. `job`/`run_id` name the failed job and its run (or the last job's run
    when it succeeded); `reason` is one line, passwords masked."""

    status: Status
    reason: str = ""
    job: str | None = None
    run_id: str | None = None
    seconds: float = 0.0
    output: str | None = None  # where the run's own output was written


RunFunction = Callable[[datetime], RunOutcome]


class ScheduleLog:
    """`schedule.jsonl` (one line per tick) and the same line, readable, on `out`."""

    def __init__(self, directory: Path | None, out: TextIO | None = None) -> None:
        self.directory = directory
        self.out = out or sys.stdout
        self.path = directory / "schedule.jsonl" if directory else None

    def record(self, tick: datetime, outcome: RunOutcome, alert: str | None = None) -> None:
        entry = {"tick": tick.astimezone(UTC).isoformat(timespec="seconds"), **asdict(outcome)}
        if alert:
            entry["alert"] = alert
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self.say(tick, _describe(outcome) + (f"  [{alert}]" if alert else ""))

    def say(self, tick: datetime, text: str) -> None:
        self.out.write(f"{tick.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  {text}\n")
        self.out.flush()

    def entries(self) -> list[dict[str, object]]:
        if self.path is None or not self.path.is_file():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _describe(outcome: RunOutcome) -> str:
    if outcome.status == "SUCCEEDED":
        return f"SUCCEEDED in {outcome.seconds:.1f} s (run {outcome.run_id})"
    if outcome.status == "SKIPPED":
        return f"SKIPPED: {outcome.reason}"
    where = outcome.job or "the workflow"
    if outcome.run_id:
        where += f" (run {outcome.run_id})"
    return f"{outcome.status} in {outcome.seconds:.1f} s: {where}: {outcome.reason}"


# ---------------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------------


class Scheduler:
    """Runs `run(tick)` at every tick, one at a time, until `request_stop()`."""

    def __init__(
        self,
        run: RunFunction,
        *,
        every: timedelta = timedelta(minutes=DEFAULT_EVERY_MINUTES),
        clock: Clock | None = None,
        log: ScheduleLog | None = None,
        alerter: Alerter | None = None,
        max_ticks: int | None = None,
    ) -> None:
        if every <= timedelta(0):
            raise ValueError("the cadence must be positive")
        self.run = run
        self.every = every
        self.clock = clock or SystemClock()
        self.log = log or ScheduleLog(None)
        self.alerter = alerter
        self.max_ticks = max_ticks  # tests: stop after this many ticks (run or skipped)
        self.stop = threading.Event()
        self.running: datetime | None = None  # the tick whose run is in progress
        self.ticks = 0

    def request_stop(self) -> None:
        self.stop.set()

    def _count(self) -> bool:
        """Count one tick; True when max_ticks is reached."""
        self.ticks += 1
        return self.max_ticks is not None and self.ticks >= self.max_ticks

    def run_forever(self) -> None:
        tick = next_tick(self.clock.now(), self.every)
        while not self.stop.is_set():
            if self.clock.wait((tick - self.clock.now()).total_seconds(), self.stop):
                break
            self.running = tick
            try:
                outcome = self.run(tick)
            except Exception as exc:  # the run function itself broke: a failed run, the schedule goes on
                outcome = RunOutcome("FAILED", redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
            finally:
                self.running = None
            self.log.record(tick, outcome, self._alert(tick, outcome))
            if self._count() or self.stop.is_set():
                break
            ended = self.clock.now()
            for missed in ticks_between(tick, ended, self.every):
                since = f"{tick.astimezone(UTC):%H:%M:%S} UTC"
                self.log.record(missed, RunOutcome("SKIPPED", f"the run of {since} was still running"))
                if self._count():
                    return
            tick = next_tick(ended, self.every)

    def _alert(self, tick: datetime, outcome: RunOutcome) -> str | None:
        if self.alerter is None or outcome.status == "SKIPPED":
            return None
        if outcome.status == "SUCCEEDED":
            sent = self.alerter.succeeded(outcome.run_id or tick_id(tick), tick)
        else:
            failure = Failure(
                job=outcome.job or "workflow",
                reason=outcome.reason,
                run_id=outcome.run_id or f"scheduled-{tick_id(tick)}",
                scheduled_at=tick,
            )
            sent = self.alerter.failed(failure)
        if self.alerter.last_error:
            return self.alerter.last_error
        return f"alert sent: {sent}" if sent else None


# ---------------------------------------------------------------------------------------------
# The real run: `totes run` in a child process
# ---------------------------------------------------------------------------------------------


class WorkflowProcess:
    """The run function of `totes schedule`: one `totes run` child process per tick.

    `env` is the child's environment (the settings as TOTESYS_URL, WAREHOUSE_URL, LAKE_ROOT ...:
    never on the command line, where `ps` shows them). `settings` is only used to read the run
    records and to mask passwords in what the child printed.
    """

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        log_dir: Path | None,
        timeout: timedelta | None = timedelta(minutes=DEFAULT_TIMEOUT_MINUTES),
        command: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = dict(env)
        self.log_dir = log_dir
        self.timeout = timeout
        self.command = command or [sys.executable, "-m", "shared.local.cli", "run"]
        self.abort = threading.Event()  # set by a second stop signal: end the run in progress now
        # The child runs the same code as this process, wherever it is imported from.
        package_root = str(Path(__file__).resolve().parents[2])
        path = self.env.get("PYTHONPATH")
        self.env["PYTHONPATH"] = package_root + (os.pathsep + path if path else "")
        self.env["PYTHONUNBUFFERED"] = "1"  # a killed run's output so far is in its log

    def _run_records(self) -> set[str]:
        runs = Path(LakeLayout.of(self.settings).runs)
        return set(p.name for p in runs.glob("*.json")) if runs.is_dir() else set()

    def _read_record(self, name: str) -> dict[str, object]:
        path = Path(LakeLayout.of(self.settings).runs) / name
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def _output_file(self, tick: datetime) -> Path | None:
        if self.log_dir is None:
            return None
        runs = self.log_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        for old in sorted(runs.glob("*.log"))[:-KEEP_RUN_LOGS]:
            old.unlink(missing_ok=True)
        return runs / f"{tick_id(tick)}.log"

    def __call__(self, tick: datetime) -> RunOutcome:
        if lake_is_locked(self.settings):
            return RunOutcome("SKIPPED", f"{LAKE_LOCKED} (a run not started by this schedule)")
        before = self._run_records() if not is_s3(self.settings.state) else set()
        output = self._output_file(tick)
        started = time.monotonic()
        with open(output or os.devnull, "w", encoding="utf-8") as sink:
            process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell, fixed arguments
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C in the scheduler's terminal does not reach it
            )
            timed_out = self._wait(process, started)
        seconds = round(time.monotonic() - started, 1)
        text = output.read_text(encoding="utf-8", errors="replace") if output else ""
        records = [self._read_record(n) for n in sorted(self._run_records() - before)]
        out = str(output) if output else None
        if timed_out or self.abort.is_set():
            running = next(
                (r for r in records if r.get("status") == "RUNNING"), records[-1] if records else {}
            )
            why = (
                f"timed out after {_duration(self.timeout)} and was killed"
                if timed_out and self.timeout is not None
                else "stopped with the scheduler (killed)"
            )
            return RunOutcome(
                "TIMED_OUT" if timed_out else "FAILED",
                f"{why}; the next run recovers what it left",
                _str(running.get("job")),
                _str(running.get("run_id")),
                seconds,
                out,
            )
        if process.returncode == 0:
            last = records[-1] if records else {}
            return RunOutcome("SUCCEEDED", "", _str(last.get("job")), _str(last.get("run_id")), seconds, out)
        failed = next((r for r in records if r.get("status") in ("FAILED", "RUNNING")), None)
        reason = self._reason(text, process.returncode)
        if failed is not None:
            message = _str(failed.get("message"))
            if failed.get("status") == "RUNNING":  # it died without a word (killed, out of memory)
                message = f"the process died (exit {process.returncode}) during this job"
            return RunOutcome(
                "FAILED",
                redact(message or reason, self.settings),
                _str(failed.get("job")),
                _str(failed.get("run_id")),
                seconds,
                out,
            )
        if LAKE_LOCKED in reason:
            return RunOutcome("SKIPPED", reason, seconds=seconds, output=out)
        return RunOutcome("FAILED", reason, self._job_of(reason), None, seconds, out)

    def _wait(self, process: subprocess.Popen[bytes], started: float) -> bool:
        """Wait for the child; True if it ran past the timeout (then it has been killed)."""
        limit = self.timeout.total_seconds() if self.timeout else None
        while True:
            try:
                process.wait(timeout=0.5)
                return False
            except subprocess.TimeoutExpired:
                pass
            late = limit is not None and time.monotonic() - started > limit
            if late or self.abort.is_set():
                _terminate(process)
                return late

    def _reason(self, text: str, returncode: int) -> str:
        """The child's one-line reason: its `totes: ...` / `FAILED: ...` line, passwords masked."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("totes: "):
                return redact(line.removeprefix("totes: "), self.settings)
            if line.startswith("FAILED: "):
                return redact(line.removeprefix("FAILED: "), self.settings)
        tail = lines[-1] if lines else "no output"
        return redact(f"exit {returncode}: {tail}", self.settings)

    def _job_of(self, reason: str) -> str | None:
        """The first job needing the database a reason names (`TOTESYS_URL (...) is unreachable`):
        the workflow checks every database before its first job, so none had started."""
        for name in JOBS:
            try:
                urls = job_spec(name).databases(self.settings)
            except Exception:  # noqa: S112 - a setting that is not configured names no job
                continue
            if any(reason.startswith(f"{url.setting} ") for url in urls):
                return f"{name} (not started)"
        return None


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group (the CLI and its JVM), SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def lake_is_locked(settings: Settings) -> bool:
    """Whether another process holds the local lake's run lock now (never on S3: Glue serialises)."""
    import fcntl

    path = Path(LakeLayout.of(settings).lock)
    if is_s3(settings.state) or not path.exists():
        return False
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def log_dir_for(settings: Settings, home: Path) -> Path:
    """`<LAKE_ROOT>/_state/schedule` for a local lake; `<TOTES_HOME>/schedule` for one on S3."""
    return home / "schedule" if is_s3(settings.state) else Path(LakeLayout.of(settings).schedule)


class ScheduleLocked(RuntimeError):
    """Another `totes schedule` already runs this lake's schedule."""


def scheduler_lock(log_dir: Path) -> TextIO:
    """Hold `<log dir>/scheduler.lock` for this process's life (the kernel drops it when it dies):
    two schedulers on one lake would each skip the other's ticks and alert twice."""
    import fcntl

    log_dir.mkdir(parents=True, exist_ok=True)
    handle = open(log_dir / "scheduler.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        who = handle.read().strip() or "another process"
        handle.close()
        raise ScheduleLocked(f"this lake already has a scheduler ({who}); stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"totes schedule, pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    handle.flush()
    return handle


def install_stop_signals(scheduler: Scheduler, run: WorkflowProcess | None) -> None:
    """SIGTERM / SIGINT: the first lets the run in progress finish, the second stops it too.

    The handlers only set events (printing from a signal handler can break a write in progress).
    """

    def on_signal(signum: int, frame: object) -> None:
        if scheduler.stop.is_set() and run is not None:
            run.abort.set()
        scheduler.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
