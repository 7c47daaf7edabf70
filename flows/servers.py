"""The local servers that erp-sync commands share: Prefect's API and the embedded PostgreSQL.

Without PREFECT_API_URL, Prefect would start a temporary server in every process (about 11 s,
and an orphan when the process is killed). Instead one `prefect server start` per ERP_SYNC_HOME
serves every command; likewise the embedded PostgreSQL keeps running between commands. Each
server has a small watchdog of ours (`python -m flows.servers watch prefect|postgres HOME`),
detached from the command that started it (its own session, not a child of the command), that
stops the server when no command has used the home for ERP_SYNC_SERVER_IDLE_MINUTES, and dies
with it. Under HOME/servers/:

- prefect.json / postgres.json: the watchdog's state (URL, pids), written by the watchdog
- prefect.lock / postgres.lock: held while a command checks or starts a server, and while a
  watchdog decides to stop one, so two commands at once start one server
- last-used, and clients/<pid> for each running command: what "idle" is measured from

Prefect's own data (SQLite) and the server's log live in HOME/prefect/. A new home's Prefect
database starts as a copy of a pre-migrated one, made once per installed Prefect version under
ERP_SYNC_CACHE_DIR (`python -m flows.servers prepare-prefect`; `make install` runs it, and the
first server started without one makes it in the background once it answers): the server's
first start then skips Prefect's SQLite migrations (10-15 s on a 2-core machine).

This module imports neither prefect nor the database libraries at the top: the watchdogs are
tiny processes, and a command pays only for what it uses.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFECT_STARTUP_TIMEOUT = 120.0
"""Seconds a new Prefect server may take to answer /api/health (its first start migrates)."""

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """Where erp-sync keeps what any home may reuse when ERP_SYNC_CACHE_DIR is unset."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "erp-sync"


def cache_dir() -> Path:
    """ERP_SYNC_CACHE_DIR, else the default (read from the environment: watchdogs read it too)."""
    configured = os.environ.get("ERP_SYNC_CACHE_DIR")
    return Path(configured).expanduser() if configured else default_cache_dir()


def prefect_template(cache: Path) -> Path:
    """The pre-migrated Prefect database of the installed Prefect version under cache."""
    from importlib.metadata import version

    return cache / f"prefect-{version('prefect')}.db"


class ServerStartError(RuntimeError):
    """A shared local server did not start; the message names its log."""


@dataclass(frozen=True)
class HomeFiles:
    """Where the shared servers of one ERP_SYNC_HOME keep their state."""

    home: Path

    @property
    def state_dir(self) -> Path:
        return self.home / "servers"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def prefect_log(self) -> Path:
        return self.prefect_home / "server.log"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def last_used(self) -> Path:
        return self.state_dir / "last-used"

    @property
    def clients(self) -> Path:
        return self.state_dir / "clients"

    def state(self, kind: str) -> Path:
        return self.state_dir / f"{kind}.json"

    def lock(self, kind: str) -> Path:
        return self.state_dir / f"{kind}.lock"

    def watch_log(self, kind: str) -> Path:
        return self.state_dir / f"{kind}-watch.log"


def files_of(home: Path) -> HomeFiles:
    """The state files of home (created on first use)."""
    files = HomeFiles(home.expanduser().resolve())
    files.clients.mkdir(parents=True, exist_ok=True)
    return files


# --- use: what a command calls ----------------------------------------------------------------


_starting: tuple[HomeFiles, dict[str, Any], float] | None = None
_shared_prefect = False
"""Whether this process uses home's shared Prefect server (not one PREFECT_API_URL names)."""

HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def configure_prefect(
    home: Path,
    idle_minutes: float,
    *,
    wait: bool = True,
    startup_seconds: float = PREFECT_STARTUP_TIMEOUT,
) -> str:
    """Point this process's Prefect at a server, before Prefect is imported; return the API URL.

    PREFECT_API_URL (or Prefect settings already active in this process, as under the tests)
    wins and nothing is started. Otherwise the shared server of home is joined, or started.
    With wait=False a server that is still starting is not waited for: `wait_for_prefect()`
    does that later, so that a command can open its database meanwhile.
    """
    global _starting, _shared_prefect
    configured = configured_prefect_url()
    if configured:
        return configured
    files, state = _join_or_start_prefect(home, idle_minutes)
    _shared_prefect = True
    _starting = (files, state, startup_seconds)
    if wait:
        wait_for_prefect()
    url = str(state["url"])
    os.environ["PREFECT_API_URL"] = url
    if "prefect.settings" in sys.modules:  # imported already: its settings are read
        from prefect.settings import PREFECT_API_URL, temporary_settings

        temporary_settings(updates={PREFECT_API_URL: url}).__enter__()
    return url


def configured_prefect_url() -> str | None:
    """The Prefect API this process is told to use, if any (never starts anything)."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return url
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        value = PREFECT_API_URL.value()
        return str(value) if value else None
    return None


def wait_for_prefect() -> None:
    """Wait until the shared Prefect server that `configure_prefect` started answers."""
    global _starting
    if _starting is not None:
        files, state, startup_seconds = _starting
        _wait_until_healthy(files, state, startup_seconds)
        _starting = None


def drop_flow_heartbeats() -> None:
    """On home's shared server, run this process's flows without Prefect's heartbeat thread.

    Prefect 3.8 starts a thread per flow run that sends a heartbeat event every 180 s (for
    automations that mark silent runs as crashed) and joins it when the run ends; the thread
    sleeps in 1 s steps, so every flow run ends up to 1 s late (0.5 s on average), a third of
    a one-row import above the import floor. The shared local server has no such automation
    unless a user adds one: a user who wants heartbeats sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    and a server named by PREFECT_API_URL always gets them. Call after Prefect is imported.
    """
    if not _shared_prefect or any(os.environ.get(name) for name in HEARTBEAT_VARIABLES):
        return
    from prefect.context import SettingsContext, get_settings_context

    # Settings.copy_with_update (temporary_settings) re-reads every settings source: 0.3 s.
    # Both models are complete and valid; only the one value changes, to its other valid form.
    current = get_settings_context()
    flows = current.settings.flows.model_copy(update={"heartbeat_frequency": None})
    settings = current.settings.model_copy(update={"flows": flows})
    SettingsContext(profile=current.profile, settings=settings).__enter__()


def ensure_prefect_server(home: Path, idle_minutes: float) -> str:
    """The API URL of home's shared Prefect server, started if it is not running and healthy."""
    files, state = _join_or_start_prefect(home, idle_minutes)
    _wait_until_healthy(files, state, PREFECT_STARTUP_TIMEOUT)
    return str(state["url"])


def _join_or_start_prefect(home: Path, idle_minutes: float) -> tuple[HomeFiles, dict[str, Any]]:
    files = files_of(home)
    mark_in_use(files)
    with _locked(files.lock("prefect")):
        state = _read_state(files.state("prefect"))
        if state is not None and not _prefect_usable(state):
            _kill_group(state)
            state = None
        if state is None:
            state = _spawn_watchdog(files, "prefect", idle_minutes)
    return files, state


def ensure_embedded_postgres(home: Path, idle_minutes: float) -> str:
    """The URL of home's embedded PostgreSQL, started if needed and watched until idle."""
    from loaders.embedded import start_embedded_server

    files = files_of(home)
    mark_in_use(files)
    with _locked(files.lock("postgres")):
        url = start_embedded_server(files.home, keep_running=True)
        state = _read_state(files.state("postgres"))
        if state is None or not _pid_alive(int(state["pid"])):
            _spawn_watchdog(files, "postgres", idle_minutes)
    return url


def stop_servers(home: Path) -> list[str]:
    """Stop home's shared Prefect server and embedded PostgreSQL; say what was stopped."""
    from loaders.embedded import embedded_server_pid, stop_embedded_server

    files = HomeFiles(home.expanduser().resolve())
    stopped: list[str] = []
    if not files.state_dir.is_dir() and not files.pgdata.is_dir():
        return stopped
    files_of(home)
    with _locked(files.lock("prefect")):
        state = _read_state(files.state("prefect"))
        if state is not None and _stop_watchdog(state):
            stopped.append(
                f"the Prefect server at {ui_address(str(state['url']))} (pid {state['server_pid']})"
            )
        files.state("prefect").unlink(missing_ok=True)
    with _locked(files.lock("postgres")):
        running = embedded_server_pid(files.home) is not None
        state = _read_state(files.state("postgres"))
        if state is not None:
            _stop_watchdog(state)  # it stops the server too
            files.state("postgres").unlink(missing_ok=True)
        stop_embedded_server(files.home)
        if running:
            stopped.append(f"the embedded PostgreSQL under {files.pgdata}")
    return stopped


def ui_address(api_url: str) -> str:
    """The Prefect UI's address for an API URL (http://host:port/api -> http://host:port)."""
    return api_url.rstrip("/").removesuffix("/api")


def mark_in_use(files: HomeFiles) -> None:
    """Count this process as a user of home's servers until it exits (idle starts after)."""
    marker = files.clients / str(os.getpid())
    files.last_used.touch()
    if marker.exists():
        return
    marker.touch()

    def release() -> None:
        with contextlib.suppress(OSError):
            files.last_used.touch()
            marker.unlink()

    atexit.register(release)


# --- the watchdogs ----------------------------------------------------------------------------


def _spawn_watchdog(files: HomeFiles, kind: str, idle_minutes: float) -> dict[str, Any]:
    """Start the watchdog of kind, detached (it forks away: no zombie of ours), and its state."""
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
    }
    log = files.watch_log(kind).open("ab")
    try:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "flows.servers", "watch", kind, str(files.home),
             "--idle-minutes", str(idle_minutes)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
            cwd=files.home, start_new_session=True,
        )  # fmt: skip
        assert launcher.stdout is not None
        line = launcher.stdout.readline()  # the state, once the watchdog wrote it
        launcher.wait()
    finally:
        log.close()
    try:
        state: dict[str, Any] = json.loads(line)
    except ValueError:
        raise ServerStartError(
            f"the {kind} watchdog did not start; see {files.watch_log(kind)}"
        ) from None
    return state


def watch(kind: str, home: Path, idle_minutes: float) -> None:
    """The watchdog process: detach, start or watch the server, stop it when home is idle."""
    files = files_of(home)
    report = os.dup(1)
    if os.fork():  # the launcher exits at once; the watchdog is nobody's child but init's
        os._exit(0)
    idle_seconds = idle_minutes * 60
    poll = min(5.0, max(0.2, idle_seconds / 5))
    server: subprocess.Popen[bytes] | None = None
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    template: Path | None = None
    if kind == "prefect":
        template = prefect_template(cache_dir())
        server, state = _start_prefect_child(files, template)
        if state["seeded"] or template.is_file():
            template = None  # there is one: nothing to make
    else:
        state = {"pid": os.getpid(), "pgid": os.getpgid(0), "pgdata": str(files.pgdata)}
    state["idle_minutes"] = idle_minutes
    _write_state(files.state(kind), state)
    os.write(report, (json.dumps(state) + "\n").encode())
    os.close(report)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        while not stopping:
            if server is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=poll)
                    break  # the server exited: so does its watchdog
                if template is not None and _healthy(str(state["url"])):
                    _spawn_template_maker(template)  # it migrated: the machine is free again
                    template = None
            else:
                time.sleep(poll)
                if not _postgres_running(files):
                    break
            if _idle(files, idle_seconds):
                with _locked(files.lock(kind)):
                    if _idle(files, idle_seconds):
                        _stop_server(kind, files, server)
                        _forget_state(files.state(kind), os.getpid())
                        return
    finally:
        if stopping:
            _stop_server(kind, files, server)
        _forget_state(files.state(kind), os.getpid())


def _start_prefect_child(
    files: HomeFiles, template: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    files.prefect_home.mkdir(parents=True, exist_ok=True)
    seeded = template is not None and seed_prefect_database(files.prefect_home, template)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(files.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    with files.prefect_log.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=files.prefect_home, preexec_fn=_die_with_parent,
        )  # fmt: skip
    state = {
        "url": f"http://127.0.0.1:{port}/api",
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "server_pid": server.pid,
        "started": time.time(),
        "seeded": seeded,
    }
    return server, state


def seed_prefect_database(prefect_home: Path, template: Path) -> bool:
    """Copy the pre-migrated template into a Prefect home that has no database yet.

    True when the home's database is now the template's copy (or was already one: the
    template existed, the home had no database). Prefect still checks the migrations when the
    server starts; a template of the same Prefect version has them all.
    """
    database = prefect_home / "prefect.db"
    if database.exists() or not template.is_file():
        return False
    scratch = prefect_home / f"prefect.db.{os.getpid()}.copy"
    try:
        shutil.copyfile(template, scratch)
        scratch.replace(database)
    except OSError:
        scratch.unlink(missing_ok=True)
        return False
    return True


def prepare_prefect_template(cache: Path) -> Path | None:
    """Make the pre-migrated Prefect database of the installed Prefect version under cache.

    `prefect server database upgrade` runs into a scratch Prefect home; the database is moved
    into place only when it succeeded. Returns the template, or None when another process is
    making it. Runs once per Prefect version and machine (about 15 s of CPU here).
    """
    template = prefect_template(cache)
    if template.is_file():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "prefect-template.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if template.is_file():
            return template
        scratch = Path(tempfile.mkdtemp(prefix="prefect-template-", dir=cache))
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
                "PREFECT_HOME": str(scratch),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
            subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env=env, cwd=scratch, check=True, capture_output=True,
            )  # fmt: skip
            (scratch / "prefect.db").replace(template)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return template


def _spawn_template_maker(template: Path) -> None:
    """Make the template in a detached, low-priority process (a watchdog does not wait)."""
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "flows.servers", "prepare-prefect", "--cache-dir",
             str(template.parent)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=lambda: os.nice(19),
        )  # fmt: skip


def _die_with_parent() -> None:
    """In the server's process: receive SIGTERM when the watchdog dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_server(kind: str, files: HomeFiles, server: subprocess.Popen[bytes] | None) -> None:
    if kind == "postgres":
        from loaders.embedded import stop_embedded_server

        stop_embedded_server(files.home)
        return
    if server is None or server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _stop_watchdog(state: dict[str, Any]) -> bool:
    """SIGTERM a watchdog (it stops its server) and wait; True when something was running."""
    pid = int(state["pid"])
    server_pid = int(state.get("server_pid") or 0)
    running = _pid_alive(pid) or (server_pid > 0 and _pid_alive(server_pid))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while (_pid_alive(pid) or (server_pid and _pid_alive(server_pid))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    if _pid_alive(pid) or (server_pid and _pid_alive(server_pid)):
        _kill_group(state)
    return running


def _kill_group(state: dict[str, Any]) -> None:
    """SIGKILL a watchdog's whole process group (a server that hangs or lost its watchdog)."""
    for pid in (int(state.get("server_pid") or 0), int(state["pid"])):
        if pid > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    pgid = int(state.get("pgid") or 0)
    if pgid > 1 and pgid != os.getpgid(0):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


# --- checks -----------------------------------------------------------------------------------


def _prefect_usable(state: dict[str, Any]) -> bool:
    """The watchdog and its server live and the API answers (or is still starting)."""
    if not (_pid_alive(int(state["pid"])) and _pid_alive(int(state["server_pid"]))):
        return False
    if _healthy(str(state["url"])):
        return True
    return time.time() - float(state["started"]) < PREFECT_STARTUP_TIMEOUT


def _wait_until_healthy(files: HomeFiles, state: dict[str, Any], timeout: float) -> None:
    url = str(state["url"])
    deadline = time.time() + timeout
    delay = 0.05
    while not _healthy(url):
        if not _pid_alive(int(state["server_pid"])):
            raise ServerStartError(f"the local Prefect server exited; see {files.prefect_log}")
        if time.time() > deadline:
            raise ServerStartError(
                f"the local Prefect server did not start in time ({timeout:g} s, "
                f"ERP_SYNC_PREFECT_STARTUP_SECONDS); see {files.prefect_log}, run the command "
                "again, or set PREFECT_API_URL to a running Prefect server"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _healthy(api_url: str) -> bool:
    """Whether GET <api>/health answers 200 (a plain socket: no HTTP library to import)."""
    rest = api_url.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    connection = http.client.HTTPConnection(host, int(port or 80), timeout=3)
    try:
        connection.request("GET", f"/{path}/health".replace("//", "/"))
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _idle(files: HomeFiles, idle_seconds: float) -> bool:
    """No command is running on home and none has finished for idle_seconds."""
    for marker in files.clients.iterdir():
        try:
            pid = int(marker.name)
        except ValueError:
            continue
        if _pid_alive(pid):
            return False
        marker.unlink(missing_ok=True)  # a command killed before it could say goodbye
    try:
        age = time.time() - files.last_used.stat().st_mtime
    except FileNotFoundError:
        return True
    return age >= idle_seconds


def _postgres_running(files: HomeFiles) -> bool:
    from loaders.embedded import embedded_server_pid

    return embedded_server_pid(files.home) is not None


def _pid_alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


# --- state files ------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


def read_state(home: Path, kind: str) -> dict[str, Any] | None:
    """The recorded state of home's watchdog of kind ("prefect" or "postgres"), if any."""
    return _read_state(HomeFiles(home.expanduser().resolve()).state(kind))


def _write_state(path: Path, state: dict[str, Any]) -> None:
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(state))
    scratch.replace(path)


def _forget_state(path: Path, pid: int) -> None:
    state = _read_state(path)
    if state is not None and int(state.get("pid", 0)) == pid:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.servers watch prefect|postgres HOME --idle-minutes N`, or
    `python -m flows.servers prepare-prefect [--cache-dir DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m flows.servers")
    commands = parser.add_subparsers(dest="command", required=True)
    watcher = commands.add_parser("watch", help="run a shared server until home is idle")
    watcher.add_argument("kind", choices=["prefect", "postgres"])
    watcher.add_argument("home", type=Path)
    watcher.add_argument("--idle-minutes", type=float, default=30.0)
    preparer = commands.add_parser(
        "prepare-prefect",
        help="make the pre-migrated Prefect database that new homes start from (once per "
        "installed Prefect version)",
    )
    preparer.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "prepare-prefect":
        template = prepare_prefect_template(args.cache_dir or cache_dir())
        print(template if template is not None else "another process is making it")
        return
    watch(args.kind, args.home, args.idle_minutes)


if __name__ == "__main__":
    main()
