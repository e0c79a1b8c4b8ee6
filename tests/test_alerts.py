"""Alert emails (shared/local/alerts.py) sent to a real SMTP server the test starts (aiosmtpd):
parsed back, subject and body checked, no password in them; the once-per-outage state machine;
STARTTLS with a login, implicit TLS, and a login never sent unencrypted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from smtp_support import smtp_server

from shared.config import ConfigError
from shared.local.alerts import AlertConfig, Alerter, Failure, parse_smtp_url

WHEN = datetime(2026, 12, 2, 10, 20, tzinfo=UTC)
DB_SECRET = "hunter2"  # the warehouse password a failure must never carry into an email


def config(url: str, env: dict[str, str] | None = None) -> AlertConfig:
    alerts = AlertConfig.from_env(
        {"ALERT_FROM": "totes@example.com", **(env or {})}, smtp_url=url, alert_email="ops@example.com"
    )
    assert alerts is not None
    return alerts


def failure(job: str = "load", run_id: str = "20261202T102003123456Z") -> Failure:
    return Failure(
        job=job,
        reason="WAREHOUSE_URL (postgresql://etl:***@db:5432/warehouse) is unreachable: Connection refused",
        run_id=run_id,
        scheduled_at=WHEN,
    )


# --------------------------------------------------------------------------- SMTP_URL and ALERT_EMAIL


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.implicit_tls, plain.host, plain.port, plain.username) == (
        False,
        "mail.example.com",
        25,
        None,
    )
    login = parse_smtp_url("smtp://alerts%40example.com:p%40ss@mail.example.com:587")
    assert (login.username, login.password, login.port) == ("alerts@example.com", "p@ss", 587)
    assert login.masked == "smtp://alerts@example.com:***@mail.example.com:587"
    assert "p@ss" not in repr(login)
    tls = parse_smtp_url("smtps://u:hunter2@mail.example.com")
    assert (tls.implicit_tls, tls.port) == (True, 465)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://u:hunter2@mail.example.com", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://mail.example.com:abc", "bad port"),
        ("smtp://mail.example.com?starttls=1", "unknown parameters starttls"),
        ("smtp://mail.example.com?cafile=/nonexistent/ca.pem", "does not exist"),
        ("smtp://someone@mail.example.com", "without a password"),
    ],
)
def test_bad_smtp_urls_fail_naming_the_setting_without_the_password(value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as raised:
        parse_smtp_url(value)
    assert "SMTP_URL" in str(raised.value) and "hunter2" not in str(raised.value)


def test_alert_settings_come_together_or_not_at_all() -> None:
    assert AlertConfig.from_env({}) is None
    with pytest.raises(ConfigError, match="ALERT_EMAIL is not"):
        AlertConfig.from_env({"SMTP_URL": "smtp://mail.example.com"})
    with pytest.raises(ConfigError, match="SMTP_URL is not"):
        AlertConfig.from_env({"ALERT_EMAIL": "ops@example.com"})
    with pytest.raises(ConfigError, match="addresses"):
        AlertConfig.from_env({"ALERT_EMAIL": "ops", "SMTP_URL": "smtp://mail.example.com"})
    both = AlertConfig.from_env(
        {"ALERT_EMAIL": "a@example.com, b@example.com", "SMTP_URL": "smtp://mail.example.com:2525"}
    )
    assert both is not None and both.recipients == ("a@example.com", "b@example.com")
    flags_win = AlertConfig.from_env(
        {"ALERT_EMAIL": "a@example.com", "SMTP_URL": "smtp://x"},
        smtp_url="smtp://y",
        alert_email="c@example.com",
    )
    assert flags_win is not None and (flags_win.smtp.host, flags_win.recipients) == ("y", ("c@example.com",))


# --------------------------------------------------------------------------- once per outage


def test_one_email_per_outage_and_one_when_it_recovers(tmp_path) -> None:
    with smtp_server(tmp_path) as inbox:
        alerter = Alerter(config(inbox.url), tmp_path / "alert_state.json", context="lake:    /data/lake")
        assert alerter.failed(failure()) == "failure"
        [sent] = inbox.wait_for(1)
        assert sent.recipients == ["ops@example.com"]
        assert sent.message["From"] == "totes@example.com"
        assert sent.subject == "totes: load failed (run 20261202T102003123456Z)"
        body = sent.body
        assert "job:     load" in body
        assert "reason:  WAREHOUSE_URL (postgresql://etl:***@db:5432/warehouse) is unreachable" in body
        assert "run id:  20261202T102003123456Z" in body
        assert "2026-12-02 10:20:00 UTC" in body and "lake:    /data/lake" in body
        assert DB_SECRET not in body

        # still failing, for another reason and job: no new email
        assert alerter.failed(failure("transform", "20261202T104001000000Z")) is None
        assert alerter.failed(failure()) is None
        # a restarted scheduler remembers the outage was reported
        restarted = Alerter(config(inbox.url), tmp_path / "alert_state.json")
        assert restarted.failed(failure()) is None
        assert len(inbox.wait_for(2, timeout=1)) == 1

        assert restarted.succeeded("20261202T110002000000Z", WHEN) == "recovered"
        received = inbox.wait_for(2)
        assert len(received) == 2
        recovered = received[1]
        assert recovered.subject == "totes: recovered, runs succeed again (run 20261202T110002000000Z)"
        assert "4 failed runs" in recovered.body and "Connection refused" in recovered.body
        # healthy: nothing more; a new outage is reported again
        assert restarted.succeeded("20261202T112002000000Z", WHEN) is None
        assert restarted.failed(failure()) == "failure"
        assert len(inbox.wait_for(3)) == 3


def test_a_mail_server_down_does_not_swallow_the_alert(tmp_path) -> None:
    with smtp_server(tmp_path) as inbox:
        url = inbox.url
    # the server is gone: the alert is reported as not sent, and owed
    down = Alerter(config(url), tmp_path / "state.json")
    assert down.failed(failure()) is None
    assert down.last_error and "not sent" in down.last_error and "ConnectionRefusedError" in down.last_error
    assert down.state.alerted is False
    port = int(url.rsplit(":", 1)[1])
    with smtp_server(tmp_path) as inbox:
        again = Alerter(config(inbox.url), tmp_path / "state.json")  # the same outage, server back
        assert again.state.failing_since is not None and again.state.failed_runs == 1
        assert again.failed(failure()) == "failure"
        assert "2 failed runs" not in inbox.wait_for(1)[0].body  # the failure email: the first one
    assert port > 0


# --------------------------------------------------------------------------- TLS and logins


def test_starttls_and_a_login(tmp_path) -> None:
    with smtp_server(tmp_path, tls="starttls", login=("alerts", "hunter2")) as inbox:
        alerter = Alerter(config(inbox.url), None)
        assert alerter.failed(failure()) == "failure", alerter.last_error
        [sent] = inbox.wait_for(1)
        assert sent.encrypted and sent.login == "alerts"
        assert inbox.logins == [("alerts", "hunter2")]
        assert "hunter2" not in sent.message.as_string()


def test_a_wrong_login_is_reported_without_the_password(tmp_path) -> None:
    with smtp_server(tmp_path, tls="starttls", login=("alerts", "hunter2")) as inbox:
        wrong = inbox.url.replace("hunter2", "letmein")
        alerter = Alerter(config(wrong), None)
        assert alerter.failed(failure()) is None
        assert alerter.last_error and "SMTPAuthenticationError" in alerter.last_error
        assert "letmein" not in alerter.last_error and "***" in alerter.last_error
        assert inbox.received == []


def test_a_server_certificate_not_trusted_is_refused(tmp_path) -> None:
    with smtp_server(tmp_path, tls="starttls") as inbox:
        untrusted = inbox.url.split("?")[0]  # without its cafile: the test CA is not trusted
        alerter = Alerter(config(untrusted), None)
        assert alerter.failed(failure()) is None
        assert alerter.last_error and "CERTIFICATE_VERIFY_FAILED" in alerter.last_error
        assert inbox.received == []


# aiosmtpd counts only STARTTLS as TLS for its AUTH check, so the implicit-TLS server is told not to
# require it, and warns; the session is TLS from the first byte all the same (asserted below).
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(tmp_path) -> None:
    with smtp_server(tmp_path, tls="implicit", login=("alerts", "hunter2")) as inbox:
        assert inbox.url.startswith("smtps://")
        alerter = Alerter(config(inbox.url), None)
        assert alerter.failed(failure()) == "failure", alerter.last_error
        [sent] = inbox.wait_for(1)
        assert sent.encrypted and sent.login == "alerts"


def test_a_login_is_never_sent_unencrypted(tmp_path) -> None:
    with smtp_server(tmp_path) as inbox:  # no TLS offered
        with_login = inbox.url.replace("smtp://", "smtp://alerts:hunter2@")
        alerter = Alerter(config(with_login), None)
        assert alerter.failed(failure()) is None
        assert alerter.last_error and "offers no STARTTLS" in alerter.last_error
        assert "hunter2" not in alerter.last_error
        assert inbox.logins == [] and inbox.received == []
