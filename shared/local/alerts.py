"""Alert emails for the local schedule (`totes schedule`): the stand-in for the stack's CloudWatch
alarms -> SNS -> email, without AWS.

One email when runs start failing (naming the job, the one-line reason with passwords masked and the
run id), none while they stay broken, one more when a run succeeds again. `Alerter` is that state
machine; it keeps its state in a small JSON file beside the schedule log, so a restarted scheduler
does not email again about the outage it already reported. Sending goes through `smtplib` to the
server `SMTP_URL` names:

    smtp://host[:25]                  plain SMTP, upgraded with STARTTLS when the server offers it
    smtp://user:password@host:587     the same with a login, which is only ever sent over TLS
    smtps://user:password@host[:465]  TLS from the first byte (implicit TLS)
    ...?cafile=/path/ca.pem           trust this CA for the server's certificate (else the system's)

Called by shared/local/schedule.py; tests/test_alerts.py sends to a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from shared.config import ConfigError

SMTP_TIMEOUT_SECONDS = 30
MASK = "***"


@dataclass(frozen=True)
class SmtpUrl:
    """Where alert emails go: parsed from SMTP_URL (see the module docstring)."""

    implicit_tls: bool
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    @property
    def masked(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = f"{self.username}:{MASK}@" if self.username else ""
        return f"{scheme}://{auth}{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name verified, against `cafile` or the system's CAs."""
        return ssl.create_default_context(cafile=self.cafile)


def parse_smtp_url(value: str, setting: str = "SMTP_URL") -> SmtpUrl:
    """`smtp://` or `smtps://` URL -> SmtpUrl, or a ConfigError naming `setting` (password masked)."""
    parts = urlsplit(value.strip())
    shown = value if parts.password is None else value.replace(parts.password, MASK)
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(
            f"{setting} must start with smtp:// or smtps:// (got {shown!r}): "
            "expected smtp://[user:password@]host[:port] or smtps://..."
        )
    if not parts.hostname:
        raise ConfigError(f"{setting} has no host ({shown!r})")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{setting} has a bad port ({shown!r})") from None
    implicit = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"cafile"})
    if unknown:
        raise ConfigError(f"{setting} has unknown parameters {', '.join(unknown)} (known: cafile)")
    cafile = query.get("cafile", [None])[-1]
    if cafile is not None and not Path(cafile).is_file():
        raise ConfigError(f"{setting}: cafile {cafile} does not exist")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        raise ConfigError(f"{setting} names user {username!r} without a password")
    return SmtpUrl(
        implicit_tls=implicit,
        host=parts.hostname,
        port=port or (465 if implicit else 25),
        username=username,
        password=password,
        cafile=cafile,
    )


@dataclass(frozen=True)
class AlertConfig:
    """Who is told, and through which server. None of it is a secret except the SMTP password."""

    smtp: SmtpUrl
    recipients: tuple[str, ...]
    sender: str

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], smtp_url: str | None = None, alert_email: str | None = None
    ) -> AlertConfig | None:
        """From ALERT_EMAIL, SMTP_URL and ALERT_FROM (flags win); None when neither is set.

        One without the other is a ConfigError: a schedule that silently cannot alert is worse than
        one that refuses to start.
        """
        url = smtp_url or env.get("SMTP_URL", "")
        emails = alert_email or env.get("ALERT_EMAIL", "")
        if not url and not emails:
            return None
        if not emails:
            raise ConfigError("SMTP_URL is set but ALERT_EMAIL is not: set who gets the alerts")
        if not url:
            raise ConfigError(
                "ALERT_EMAIL is set but SMTP_URL is not: set the mail server, e.g. smtp://host:25"
            )
        recipients = tuple(a.strip() for a in emails.split(",") if a.strip())
        if not recipients or any("@" not in a for a in recipients):
            raise ConfigError(
                f"ALERT_EMAIL must be one or more addresses separated by commas (got {emails!r})"
            )
        sender = env.get("ALERT_FROM") or f"totes@{socket.getfqdn() or 'localhost'}"
        return cls(parse_smtp_url(url), recipients, sender)


def send_email(config: AlertConfig, subject: str, body: str) -> None:
    """Send one plain-text email; raises OSError / smtplib.SMTPException when it cannot."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Subject"] = subject
    message.set_content(body)
    smtp = config.smtp
    client: smtplib.SMTP
    if smtp.implicit_tls:
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS, context=smtp.tls_context()
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        encrypted = smtp.implicit_tls
        if not encrypted and client.has_extn("starttls"):
            client.starttls(context=smtp.tls_context())
            client.ehlo()
            encrypted = True
        if smtp.username:
            if not encrypted:
                raise smtplib.SMTPException(
                    f"{smtp.masked} offers no STARTTLS: the login is never sent unencrypted (use smtps://)"
                )
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


# ---------------------------------------------------------------------------------------------
# When to email: the state machine
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What a failed (or timed-out) scheduled run tells the people on call. Already masked."""

    job: str  # the job that failed, or "workflow" when none had started
    reason: str  # one line
    run_id: str  # the failed job's run id, or the scheduled run's id when no job had started
    scheduled_at: datetime


@dataclass
class AlertState:
    """Persisted between ticks (and restarts): are we in an outage, and was it reported."""

    failing_since: str | None = None
    failed_runs: int = 0
    alerted: bool = False  # the failure email went out
    last_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "failing_since": self.failing_since,
            "failed_runs": self.failed_runs,
            "alerted": self.alerted,
            "last_reason": self.last_reason,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> AlertState:
        return cls(
            failing_since=document.get("failing_since"),
            failed_runs=int(document.get("failed_runs", 0)),
            alerted=bool(document.get("alerted", False)),
            last_reason=str(document.get("last_reason", "")),
        )


Sender = Callable[[AlertConfig, str, str], None]
Sent = Literal["failure", "recovered"]


class Alerter:
    """Emails on the first failure of an outage and on the recovery; quiet in between.

    An email that cannot be sent is reported (`last_error`) and retried at the next run that would
    have sent it, so a mail server down at the moment of the failure does not swallow the alert.
    """

    def __init__(
        self,
        config: AlertConfig,
        state_file: Path | None = None,
        send: Sender = send_email,
        context: str = "",
    ) -> None:
        self.config = config
        self.state_file = state_file
        self._send = send
        self.context = context  # a line naming the lake and host, added to every email
        self.last_error: str | None = None
        self.state = self._load()

    def _load(self) -> AlertState:
        if self.state_file is None or not self.state_file.is_file():
            return AlertState()
        try:
            return AlertState.from_json(json.loads(self.state_file.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            return AlertState()  # a damaged state file: at worst one email too many

    def _save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.state_file)

    def _try_send(self, subject: str, body: str) -> bool:
        try:
            self._send(self.config, subject, body)
        except (OSError, smtplib.SMTPException) as exc:
            self.last_error = f"alert email to {', '.join(self.config.recipients)} via {self.config.smtp.masked} not sent: {type(exc).__name__}: {exc}"
            if self.config.smtp.password:
                self.last_error = self.last_error.replace(self.config.smtp.password, MASK)
            return False
        self.last_error = None
        return True

    def failed(self, failure: Failure) -> Sent | None:
        """A scheduled run failed: email if this outage was not reported yet."""
        state = self.state
        if state.failing_since is None:
            state = replace(state, failing_since=_stamp(failure.scheduled_at), alerted=False, failed_runs=0)
        state = replace(state, failed_runs=state.failed_runs + 1, last_reason=failure.reason)
        sent: Sent | None = None
        if not state.alerted and self._try_send(*failure_email(failure, state, self.context)):
            state = replace(state, alerted=True)
            sent = "failure"
        self.state = state
        self._save()
        return sent

    def succeeded(self, run_id: str, scheduled_at: datetime) -> Sent | None:
        """A scheduled run succeeded: email once if it ends a reported outage."""
        state = self.state
        if state.failing_since is None:
            return None
        sent: Sent | None = None
        if state.alerted:
            if not self._try_send(*recovered_email(state, run_id, scheduled_at, self.context)):
                return None  # still owed: the next good run sends it
            sent = "recovered"
        self.state = AlertState()
        self._save()
        return sent


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def failure_email(failure: Failure, state: AlertState, context: str = "") -> tuple[str, str]:
    subject = f"totes: {failure.job} failed (run {failure.run_id})"
    body = "\n".join(
        [
            f"The scheduled Terrific Totes workflow run of {_stamp(failure.scheduled_at)} failed.",
            "",
            f"job:     {failure.job}",
            f"reason:  {failure.reason}",
            f"run id:  {failure.run_id}",
            *([context] if context else []),
            "",
            "The schedule carries on; the jobs are crash-safe, so the next run redoes what this one left.",
            "No more emails while runs keep failing; one more when a run succeeds again.",
            "Details: totes status (bookmarks, recent runs, quarantine).",
        ]
    )
    return subject, body + "\n"


def recovered_email(
    state: AlertState, run_id: str, scheduled_at: datetime, context: str = ""
) -> tuple[str, str]:
    subject = f"totes: recovered, runs succeed again (run {run_id})"
    body = "\n".join(
        [
            f"The scheduled Terrific Totes workflow run of {_stamp(scheduled_at)} succeeded.",
            "",
            f"failing since:  {state.failing_since} ({state.failed_runs} failed runs)",
            f"last reason:    {state.last_reason}",
            f"good run id:    {run_id}",
            *([context] if context else []),
        ]
    )
    return subject, body + "\n"
