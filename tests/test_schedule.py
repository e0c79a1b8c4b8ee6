"""`totes schedule` (shared/local/schedule.py): ticks on the clock, one run at a time, skipped ticks
logged, failures alerted once and recovery once (a real SMTP server), a clean stop.

The scheduler is driven by a fake clock and fake runs; the real run function (`totes run` in a child
process) by a stand-in command that behaves like it; and the real `totes schedule` process once, with
a small cadence, stopped by SIGTERM while a run is in progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smtp_support import smtp_server

from shared.config import Settings, parse_pg_url
from shared.lake.layout import LakeLayout
from shared.lake.storage import run_lock
from shared.local.alerts import AlertConfig, Alerter
from shared.local.schedule import (
    RunOutcome,
    ScheduleLocked,
    ScheduleLog,
    Scheduler,
    WorkflowProcess,
    next_tick,
    scheduler_lock,
    ticks_between,
)

REPO = Path(__file__).resolve().parents[1]
TWENTY = timedelta(minutes=20)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 2, hour, minute, second, tzinfo=UTC)


class FakeClock:
    """Time passes only when the scheduler waits or a fake run says it took a while."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.time

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.waits.append(seconds)
        self.time += timedelta(seconds=max(seconds, 0.0))
        return stop.is_set()


class FakeRuns:
    """A run function: each run takes `minutes[i]` on the fake clock and ends with `statuses[i]`."""

    def __init__(self, clock: FakeClock, statuses: list[str], minutes: list[float] | None = None) -> None:
        self.clock, self.statuses = clock, statuses
        self.minutes = minutes or [3.0] * len(statuses)
        self.started: list[datetime] = []
        self.active = 0
        self.on_run: list[object] = []

    def __call__(self, tick: datetime) -> RunOutcome:
        assert self.active == 0, "two runs at once"
        self.active += 1
        i = len(self.started)
        self.started.append(self.clock.now())
        for hook in self.on_run:
            hook()  # type: ignore[operator]
        self.clock.time += timedelta(minutes=self.minutes[i])
        self.active -= 1
        status = self.statuses[i]
        if status == "SUCCEEDED":
            return RunOutcome("SUCCEEDED", job="load", run_id=f"good-{i}", seconds=self.minutes[i] * 60)
        return RunOutcome(
            status,  # type: ignore[arg-type]
            reason="WAREHOUSE_URL (postgresql://etl:***@db:5432/warehouse) is unreachable: Connection refused",
            job="load",
            run_id=f"bad-{i}",
        )


# --------------------------------------------------------------------------- ticks


def test_ticks_fall_on_the_clock_like_the_glue_trigger() -> None:
    assert next_tick(at(10, 7), TWENTY) == at(10, 20)
    assert next_tick(at(10, 20), TWENTY) == at(10, 40)  # strictly after
    assert next_tick(at(10, 59, 59), TWENTY) == at(11, 0)
    assert next_tick(at(23, 50), TWENTY) == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert list(ticks_between(at(10, 0), at(11, 0), TWENTY)) == [at(10, 20), at(10, 40), at(11, 0)]
    assert next_tick(at(10, 7, 1), timedelta(seconds=3)) == at(10, 7, 3)
    seven = list(ticks_between(at(0, 50), at(1, 10), timedelta(minutes=7)))
    assert [t - s for s, t in zip(seven, seven[1:], strict=False)] == [timedelta(minutes=7)] * (
        len(seven) - 1
    )


def test_runs_at_each_tick_and_waits_in_between(tmp_path) -> None:
    clock = FakeClock(at(10, 7))
    runs = FakeRuns(clock, ["SUCCEEDED"] * 3)
    log = ScheduleLog(tmp_path, out=open(os.devnull, "w"))  # noqa: SIM115
    Scheduler(runs, every=TWENTY, clock=clock, log=log, max_ticks=3).run_forever()
    assert runs.started == [at(10, 20), at(10, 40), at(11, 0)]
    assert clock.waits[0] == 13 * 60 and clock.waits[1] == 17 * 60  # 3-minute runs
    assert [e["status"] for e in log.entries()] == ["SUCCEEDED"] * 3
    assert log.entries()[0]["tick"] == "2026-12-02T10:20:00+00:00"


def test_a_tick_during_a_run_is_skipped_and_logged(tmp_path, capsys) -> None:
    clock = FakeClock(at(10, 7))
    runs = FakeRuns(clock, ["SUCCEEDED", "SUCCEEDED"], minutes=[45, 3])  # 10:20 runs until 11:05
    log = ScheduleLog(tmp_path)
    Scheduler(runs, every=TWENTY, clock=clock, log=log, max_ticks=4).run_forever()
    assert runs.started == [at(10, 20), at(11, 20)]
    entries = log.entries()
    assert [(e["tick"][11:16], e["status"]) for e in entries] == [
        ("10:20", "SUCCEEDED"),
        ("10:40", "SKIPPED"),
        ("11:00", "SKIPPED"),
        ("11:20", "SUCCEEDED"),
    ]
    assert entries[1]["reason"] == "the run of 10:20:00 UTC was still running"
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == "2026-12-02 10:40:00 UTC  SKIPPED: the run of 10:20:00 UTC was still running"


def test_carries_on_after_failures_alerting_once_and_on_recovery(tmp_path) -> None:
    clock = FakeClock(at(10, 7))
    runs = FakeRuns(clock, ["SUCCEEDED", "FAILED", "TIMED_OUT", "FAILED", "SUCCEEDED", "SUCCEEDED"])
    log = ScheduleLog(tmp_path / "log", out=open(os.devnull, "w"))  # noqa: SIM115
    with smtp_server(tmp_path) as inbox:
        alerts = AlertConfig.from_env({}, smtp_url=inbox.url, alert_email="ops@example.com")
        assert alerts is not None
        alerter = Alerter(alerts, tmp_path / "log" / "alert_state.json")
        Scheduler(runs, every=TWENTY, clock=clock, log=log, alerter=alerter, max_ticks=6).run_forever()
        received = inbox.wait_for(2)
        assert len(inbox.wait_for(3, timeout=1)) == 2
    assert len(runs.started) == 6  # every tick ran: failures do not stop the schedule
    failure, recovered = received
    assert failure.subject == "totes: load failed (run bad-1)"
    assert "job:     load" in failure.body and "run id:  bad-1" in failure.body
    assert "Connection refused" in failure.body and "2026-12-02 10:40:00 UTC" in failure.body
    assert recovered.subject == "totes: recovered, runs succeed again (run good-4)"
    assert "3 failed runs" in recovered.body
    assert [e.get("alert") for e in log.entries()] == [
        None,
        "alert sent: failure",
        None,
        None,
        "alert sent: recovered",
        None,
    ]


def test_a_run_function_that_raises_is_a_failed_run_and_the_schedule_goes_on(tmp_path) -> None:
    clock = FakeClock(at(10, 7))
    calls: list[datetime] = []

    def flaky(tick: datetime) -> RunOutcome:
        calls.append(tick)
        if len(calls) == 1:
            raise OSError("cannot start postgresql://etl:hunter2@db/wh")
        return RunOutcome("SUCCEEDED", run_id="r2")

    log = ScheduleLog(tmp_path, out=open(os.devnull, "w"))  # noqa: SIM115
    Scheduler(flaky, every=TWENTY, clock=clock, log=log, max_ticks=2).run_forever()
    first, second = log.entries()
    assert (
        first["status"] == "FAILED" and first["reason"] == "OSError: cannot start postgresql://etl:***@db/wh"
    )
    assert second["status"] == "SUCCEEDED" and calls == [at(10, 20), at(10, 40)]


def test_a_stop_during_a_run_lets_it_finish_then_stops(tmp_path) -> None:
    clock = FakeClock(at(10, 7))
    runs = FakeRuns(clock, ["SUCCEEDED"] * 5, minutes=[45] * 5)
    log = ScheduleLog(tmp_path, out=open(os.devnull, "w"))  # noqa: SIM115
    scheduler = Scheduler(runs, every=TWENTY, clock=clock, log=log)
    runs.on_run.append(lambda: len(runs.started) == 2 and scheduler.request_stop())  # SIGTERM, 2nd run
    scheduler.run_forever()
    assert runs.started == [at(10, 20), at(11, 20)]
    # the run in progress was recorded; the ticks it covered were not (nobody runs them anyway)
    assert [e["status"] for e in log.entries()] == ["SUCCEEDED", "SKIPPED", "SKIPPED", "SUCCEEDED"]


def test_a_stop_while_waiting_stops_at_once(tmp_path) -> None:
    class StoppedWhileWaiting(FakeClock):
        def wait(self, seconds: float, stop: threading.Event) -> bool:
            stop.set()
            return True

    runs = FakeRuns(FakeClock(at(10, 7)), ["SUCCEEDED"])
    Scheduler(runs, every=TWENTY, clock=StoppedWhileWaiting(at(10, 7))).run_forever()
    assert runs.started == []


def test_one_scheduler_per_lake(tmp_path) -> None:
    held = scheduler_lock(tmp_path)
    try:
        with pytest.raises(ScheduleLocked, match="already has a scheduler"):
            scheduler_lock(tmp_path)
    finally:
        held.close()
    scheduler_lock(tmp_path).close()  # free again


# --------------------------------------------------------------------------- the real run function

# Behaves like `totes run` as far as the scheduler can see: run records in <LAKE_ROOT>/_state/runs,
# its one-line reason, its exit code. FAKE_MODE picks what happens.
FAKE_TOTES = textwrap.dedent(
    """
    import json, os, signal, sys, time
    runs = os.path.join(os.environ["LAKE_ROOT"], "_state", "runs")
    os.makedirs(runs, exist_ok=True)
    def record(run_id, job, status, message=""):
        with open(os.path.join(runs, f"{run_id}-{job}.json"), "w") as f:
            json.dump({"job": job, "run_id": run_id, "status": status, "message": message}, f)
    mode = os.environ["FAKE_MODE"]
    if mode == "ok":
        for i, job in enumerate(["extract", "transform", "load"]):
            record(f"2026120{i}", job, "SUCCEEDED")
        print("total 1.0 s")
    elif mode == "fail":
        record("20261201", "extract", "SUCCEEDED")
        record("20261202", "transform", "FAILED", "AnalysisException: bad input")
        print("FAILED: transform failed: AnalysisException: bad input", file=sys.stderr)
        sys.exit(1)
    elif mode == "unreachable":
        print("totes: WAREHOUSE_URL (postgresql://etl:hunter2@127.0.0.1:9/wh) is unreachable: refused",
              file=sys.stderr)
        sys.exit(1)
    elif mode == "locked":
        print("totes: another run is already using this lake (totes run, pid 1); try again", file=sys.stderr)
        sys.exit(1)
    elif mode == "die":
        record("20261203", "load", "RUNNING")
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "hang":
        record("20261204", "transform", "RUNNING")
        print("working", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def fake_totes(tmp_path) -> tuple[Settings, Path]:
    script = tmp_path / "fake_totes.py"
    script.write_text(FAKE_TOTES, encoding="utf-8")
    settings = Settings(
        lake_root=str(tmp_path / "lake"),
        totesys=parse_pg_url("TOTESYS_URL", "postgresql://reader:hunter2@127.0.0.1:9/totesys"),
        warehouse=parse_pg_url("WAREHOUSE_URL", "postgresql://etl:hunter2@127.0.0.1:9/wh"),
    )
    return settings, script


def process_run(settings: Settings, script: Path, mode: str, **kwargs) -> RunOutcome:
    env = {**os.environ, "LAKE_ROOT": settings.lake_root, "FAKE_MODE": mode}
    log_dir = Path(settings.lake_root) / "_state" / "schedule"
    run = WorkflowProcess(settings, env, log_dir, command=[sys.executable, str(script)], **kwargs)
    return run(at(10, 20))


def test_the_run_function_reads_what_the_run_did(fake_totes) -> None:
    settings, script = fake_totes
    ok = process_run(settings, script, "ok")
    assert (ok.status, ok.job, ok.run_id) == ("SUCCEEDED", "load", "20261202")
    assert ok.output and Path(ok.output).read_text() == "total 1.0 s\n"

    failed = process_run(settings, script, "fail")
    assert (failed.status, failed.job, failed.run_id) == ("FAILED", "transform", "20261202")
    assert failed.reason == "AnalysisException: bad input"

    unreachable = process_run(settings, script, "unreachable")
    assert (unreachable.status, unreachable.job, unreachable.run_id) == ("FAILED", "load (not started)", None)
    assert unreachable.reason == "WAREHOUSE_URL (postgresql://etl:***@127.0.0.1:9/wh) is unreachable: refused"

    died = process_run(settings, script, "die")
    assert (died.status, died.job, died.run_id) == ("FAILED", "load", "20261203")
    assert died.reason == "the process died (exit -9) during this job"

    locked = process_run(settings, script, "locked")
    assert locked.status == "SKIPPED" and "another run is already using this lake" in locked.reason


def test_a_run_past_its_timeout_is_killed_and_reported(fake_totes) -> None:
    settings, script = fake_totes
    started = time.monotonic()
    hung = process_run(settings, script, "hang", timeout=timedelta(seconds=2))
    assert time.monotonic() - started < 30
    assert (hung.status, hung.job, hung.run_id) == ("TIMED_OUT", "transform", "20261204")
    assert hung.reason == "timed out after 2 s and was killed; the next run recovers what it left"


def test_a_tick_while_another_process_holds_the_lake_is_skipped(fake_totes) -> None:
    settings, script = fake_totes
    with run_lock(LakeLayout.of(settings).lock, "a manual totes run"):
        skipped = process_run(settings, script, "ok")
    assert skipped.status == "SKIPPED" and "a run not started by this schedule" in skipped.reason
    assert not (Path(settings.state) / "runs").exists()  # it did not start


# --------------------------------------------------------------------------- the real process


HOLD_S = 2.0


@contextlib.contextmanager
def slow_refusal(hold_s: float) -> Iterator[int]:
    """A port on 127.0.0.1 that accepts each connection, says nothing for hold_s, then closes it:
    a database that is down, but only after a while, so a run takes at least hold_s."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def hold(conn: socket.socket) -> None:
        with conn:
            stop.wait(hold_s)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=hold, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.integration
def test_the_totes_schedule_process_alerts_once_and_stops_on_sigterm(tmp_path, fresh_db) -> None:
    lake = tmp_path / "lake"
    log_path = lake / "_state" / "schedule" / "schedule.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("TOTESYS_URL", "WAREHOUSE_URL", "LAKE_ROOT")}
    env["TOTES_HOME"] = str(tmp_path / "home")

    def entries() -> list[dict]:
        text = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    with smtp_server(tmp_path) as inbox, slow_refusal(HOLD_S) as port:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared.local.cli",
                "schedule",
                "--every",
                # 1.5 s: every run (a Python and a JVM start, then a connection held HOLD_S = 2 s
                # before it is refused) spans a tick however fast the machine (a run refused at
                # once took 1.4 s on a quiet machine once its JVM mapped the class-data archive,
                # and fitted between ticks), and ticks stay more than a second apart (the log has
                # them to the second)
                "0.025",
                "--timeout",
                "3",
                "--lake-root",
                str(lake),
                "--totesys-url",
                f"postgresql://etl:hunter2@127.0.0.1:{port}/totesys",
                "--warehouse-url",
                fresh_db,
                "--smtp-url",
                inbox.url,
                "--alert-email",
                "ops@example.com",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 400
            while sum(e["status"] == "FAILED" for e in entries()) < 2:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, entries()
                time.sleep(0.5)
            # SIGTERM while the third run is in progress: it finishes, then the scheduler stops
            done = {e["tick"] for e in entries()}
            runs = lake / "_state" / "schedule" / "runs"
            while len(list(runs.glob("*.log"))) <= sum(e["status"] == "FAILED" for e in entries()):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        received = inbox.wait_for(1)
        assert len(inbox.wait_for(2, timeout=2)) == 1  # still failing: no second email
    assert process.returncode == 0, err
    assert "stopped after" in out.splitlines()[-1]
    assert "Warning" not in err and "hunter2" not in out + err

    log = entries()
    statuses = [e["status"] for e in log]
    assert statuses.count("FAILED") >= 3, log  # the run in progress at SIGTERM finished and was logged
    assert "SKIPPED" in statuses  # 1.5-second ticks fell during runs
    last_run = [e for e in log if e["status"] != "SKIPPED"][-1]
    assert last_run["tick"] not in done and last_run["status"] == "FAILED"
    assert "is unreachable" in last_run["reason"]  # it ran to its own end, it was not killed
    for entry in log:
        if entry["status"] == "FAILED":
            assert entry["job"] == "extract (not started)"
            assert entry["reason"].startswith(f"TOTESYS_URL (postgresql://etl:***@127.0.0.1:{port}/totesys)")
    [alert] = received
    assert alert.subject.startswith("totes: extract (not started) failed (run scheduled-")
    assert f"TOTESYS_URL (postgresql://etl:***@127.0.0.1:{port}/totesys) is unreachable" in alert.body
    assert "hunter2" not in alert.message.as_string()
    assert not list(lake.glob("_state/runs/*.json"))  # no job started: the check comes first
