"""A local SMTP server keeping what it receives, and email worker processes (tests, benchmarks)."""

import email
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from email import policy

from aiosmtpd.controller import Controller
from django.conf import settings

from reliability.servers import database_url, free_port


class Received(Sequence):
    """The messages an Inbox accepted: kept as bytes, each parsed when it is read.

    Parsing them as they arrived cost the server about 1.5 ms of CPU a message, which the
    email benchmark's workers paid for, sharing the machine's cores with it.
    """

    def __init__(self):
        self._raw: list[bytes] = []
        self._lock = threading.Lock()

    def accept(self, raw: bytes, *, limit: int | None) -> bool:
        """Keep `raw`, unless `limit` messages are kept already."""
        with self._lock:
            if limit is not None and len(self._raw) >= limit:
                return False
            self._raw.append(raw)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._raw)

    def __getitem__(self, index):
        with self._lock:
            raw = self._raw[index]
        if isinstance(index, slice):
            return [_parse(r) for r in raw]
        return _parse(raw)

    def __eq__(self, other) -> bool:
        return list(self) == other


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts, in `messages`.

    `refuse_from` makes it answer 421 (a transient failure) from that many
    accepted messages on, like a server that is going down. `connections`
    counts the EHLO greetings: a client greets once per connection.
    """

    def __init__(self):
        self.messages = Received()
        self.refuse_from: int | None = None
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        with self._lock:
            self.connections += 1
        return responses

    async def handle_DATA(self, server, session, envelope):
        if not self.messages.accept(envelope.content, limit=self.refuse_from):
            return "421 4.3.0 Service shutting down"
        return "250 2.0.0 OK"

    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (a free port) that can stop and start again."""

    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def start_workers(
    count: int, *, email_url: str, concurrency: int = 1, one_shot: bool = True
) -> list[subprocess.Popen]:
    """Start `count` Procrastinate workers on the email queue of the current database.

    They run the base settings, so EMAIL_URL (not a test's locmem backend)
    decides where mail goes. One-shot workers stop once the queue is empty;
    the others listen for new jobs until they get SIGTERM.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.base",
        "DATABASE_URL": database_url(),
        "DATABASE_POOL_SIZE": str(concurrency + 2),
        "EMAIL_URL": email_url,
        "LOG_LEVEL": "ERROR",
    }
    command = [
        sys.executable,
        "manage.py",
        "procrastinate",
        "worker",
        "--queues",
        "email",
        *(["--one-shot", "--no-listen-notify"] if one_shot else ["--wait", "--listen-notify"]),
        "--concurrency",
        str(concurrency),
    ]
    return [
        subprocess.Popen(  # noqa: S603
            [*command, "--name", f"email-worker-{i}"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(count)
    ]
