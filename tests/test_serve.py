"""`manage.py serve` (what `make run` ends with): serves the site, stops cleanly on Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from reliability.servers import ROOT, collect_static, database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(url: str, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return response.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_serve_answers_and_stops_with_its_children_on_sigint():
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "WARNING"}
    collect_static(env)
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # As a background job would: SIGINT ignored unless serve handles it itself.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 30
        assert wait_for(f"http://127.0.0.1:{port}/", deadline) == 200
        assert wait_for(f"http://127.0.0.1:{port}/admin/login/", deadline) == 200
        children = psutil.Process(server.pid).children(recursive=True)
        assert len(children) >= 2  # gunicorn (master and worker) and the job worker

        server.send_signal(signal.SIGINT)

        assert server.wait(timeout=30) == 0
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        # Leave nothing behind when an assertion failed half-way.
        if server.poll() is None:
            children = children or psutil.Process(server.pid).children(recursive=True)
            server.kill()
        for child in children:
            if child.is_running():
                child.kill()
