"""Mail from the portal (confirmations, invitations).

By default every message is written as an ``.eml`` file to ``<site>/portal/outbox/``, which
is what a site without a mail server (and every test) uses. With SMTP settings in
``windl.toml`` it is sent instead::

    [portal.smtp]
    host = "smtp.example.org"
    port = 587
    starttls = true
    username = "portal@example.org"
    password_env = "WINDL_SMTP_PASSWORD"
    sender = "windl portal <portal@example.org>"
"""

from __future__ import annotations

import os
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from windl.config import Site
from windl.errors import ConfigError
from windl.files import atomic_write

DEFAULT_SENDER = "windl portal <portal@localhost>"


def outbox(site: Site) -> Path:
    """Where messages go when no SMTP server is configured."""
    return site.root / "portal" / "outbox"


def send(site: Site, to: str, subject: str, body: str) -> Path | None:
    """Send one plain-text message; returns the ``.eml`` file when it went to the outbox."""
    smtp = site.settings.get("portal", {}).get("smtp", {})
    message = EmailMessage()
    message["From"] = smtp.get("sender", DEFAULT_SENDER)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="windl")
    message.set_content(body)
    if not smtp.get("host"):
        path = outbox(site) / f"{uuid.uuid4().hex}.eml"
        data = bytes(message)
        atomic_write(path, lambda fh: fh.write(data))
        return path
    password = None
    if smtp.get("password_env"):
        password = os.environ.get(smtp["password_env"])
        if password is None:
            raise ConfigError(
                f"[portal.smtp] password_env names ${smtp['password_env']}, which is not set",
                site.root,
            )
    with smtplib.SMTP(smtp["host"], int(smtp.get("port", 25)), timeout=30) as server:
        if smtp.get("starttls"):
            server.starttls()
        if smtp.get("username"):
            server.login(smtp["username"], password or "")
        server.send_message(message)
    return None
