"""A real SMTP server for the alert tests (aiosmtpd, in the dev extra), on 127.0.0.1.

`smtp_server(folder, tls=..., login=...)` starts one and yields an `Inbox`: every message it
accepted, parsed, with the login it was sent under and whether the session was encrypted.
Used by tests/test_alerts.py and tests/test_schedule.py.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from moto_account import free_port, make_tls_material


@dataclass
class Received:
    message: EmailMessage
    recipients: list[str]
    login: str | None
    encrypted: bool

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class Inbox:
    url: str  # the SMTP_URL that reaches this server
    ca_file: Path | None
    received: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (user, password) tried
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if session.authenticated else None
        with self._lock:
            self.received.append(Received(message, list(envelope.rcpt_tos), login, _encrypted(server)))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def _encrypted(server: Any) -> bool:
    """Whether the session runs over TLS, by STARTTLS or from the first byte."""
    return server.transport.get_extra_info("ssl_object") is not None


def _server_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    ca, cert, key = make_tls_material(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, ca


@contextmanager
def smtp_server(
    folder: Path,
    tls: Literal["none", "starttls", "implicit"] = "none",
    login: tuple[str, str] | None = None,
) -> Iterator[Inbox]:
    port = free_port()
    context, ca = _server_tls(folder) if tls != "none" else (None, None)
    inbox = Inbox(url="", ca_file=ca)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        inbox.logins.append((user, password))
        ok = login is not None and (user, password) == login
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    kwargs: dict[str, Any] = {}
    if tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if tls == "implicit":
        kwargs.update(ssl_context=context)
    if login is not None:
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; an implicit-TLS session is too
        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls != "implicit")
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    scheme = "smtps" if tls == "implicit" else "smtp"
    auth = f"{quote(login[0], safe='')}:{quote(login[1], safe='')}@" if login else ""
    inbox.url = f"{scheme}://{auth}127.0.0.1:{port}" + (f"?cafile={ca}" if ca else "")
    try:
        yield inbox
    finally:
        controller.stop()
