"""Reminder e-mails over SMTP, with the standard library's smtplib and email.message.

``SMTP_URL`` says where: ``smtp://[user:password@]host[:port]`` (port 25 by default),
``smtp://...?starttls=true`` to upgrade with STARTTLS (port 587 is usual), or
``smtps://...`` for TLS from the start (port 465 by default). User and password are
percent-decoded, so any character can be given.
"""

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT_SECONDS = 10
TRUE = {"1", "true", "yes", "on"}


class SmtpUrlError(ValueError):
    """SMTP_URL is not one this module understands."""


def parse_smtp_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise SmtpUrlError("SMTP_URL must look like smtp://[user:password@]host[:port]")
    query = parse_qs(parts.query)
    return {
        "host": parts.hostname,
        "port": parts.port or (465 if parts.scheme == "smtps" else 25),
        "tls": parts.scheme == "smtps",
        "starttls": query.get("starttls", [""])[0].lower() in TRUE,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


def reminder_message(reminder: dict, sender: str) -> EmailMessage:
    """The e-mail for a claimed reminder (see ``reminders.claim_mail``)."""
    message = EmailMessage()
    message["Subject"] = f"Reminder: {reminder['title']}"
    message["From"] = sender
    message["To"] = reminder["email"]
    due = reminder["due_date"].isoformat() if reminder["due_date"] else "no due date"
    lines = [
        f"This is your reminder for task {reminder['id']}: {reminder['title']}",
        f"Due: {due}",
    ]
    if reminder["description"]:
        lines += ["", reminder["description"]]
    message.set_content("\n".join(lines) + "\n")
    return message


def send(smtp_url: str, message: EmailMessage) -> None:
    """Deliver ``message``; raises OSError/smtplib.SMTPException when the server is
    unreachable or refuses it (the caller retries)."""
    settings = parse_smtp_url(smtp_url)
    client_class = smtplib.SMTP_SSL if settings["tls"] else smtplib.SMTP
    with client_class(settings["host"], settings["port"], timeout=TIMEOUT_SECONDS) as client:
        if settings["starttls"]:
            client.starttls(context=ssl.create_default_context())
        if settings["user"]:
            client.login(settings["user"], settings["password"] or "")
        client.send_message(message)
