"""A small HTTP load generator: `concurrency` threads, each request on a new connection.

Run as its own process (`python -m benchmarks.load URL TOKEN CONCURRENCY SECONDS`) so
the client's work is not counted against the server's process; prints one JSON line.
"""

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def load(url: str, token: str, *, concurrency: int, seconds: float) -> dict:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": token, "Host": parts.hostname}
    counts = {"ok": 0, "errors": 0}
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        ok = errors = 0
        seen: dict[int, int] = {}
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                response.read()
                seen[response.status] = seen.get(response.status, 0) + 1
                if response.status == 200:
                    ok += 1
                else:
                    errors += 1
            except OSError:
                errors += 1
            finally:
                conn.close()
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors
            for status, n in seen.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {**counts, "seconds": elapsed, "statuses": statuses}


if __name__ == "__main__":
    url, token, concurrency, seconds = sys.argv[1:5]
    print(json.dumps(load(url, token, concurrency=int(concurrency), seconds=float(seconds))))
