"""The shared local servers: one Prefect server and one embedded PostgreSQL per ERP_SYNC_HOME.

Each test runs `erp-sync` as a user does (subprocesses, nothing configured: no DATABASE_URL, no
PREFECT_API_URL) on its own home, and stops that home's servers when it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flows.servers import cache_dir, prepare_prefect_template, read_state

REPO = Path(__file__).resolve().parents[2]
ONE_ROW = "erp_customer_number,name,default_currency,default_language\n{number},Tiny,EUR,en\n"

pytestmark = pytest.mark.slow


def _env(home: Path, **extra: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "PREFECT_API_URL", "DISPLAY", "WAYLAND_DISPLAY")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("ERP_")}
    pythonpath = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env | {
        "ERP_SYNC_HOME": str(home),
        "ERP_SYNC_REPORT_DIR": str(home.parent / "reports"),
        "ERP_SYNC_CACHE_DIR": str(cache_dir()),
        "PYTHONPATH": pythonpath,
        **extra,
    }


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "from flows.cli import main; main()", *args]


def erp_sync(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `erp-sync ARGS` on home and return it finished (within three minutes)."""
    return subprocess.run(
        _cli(list(args)),
        cwd=home.parent,
        env=_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_row(folder: Path, number: int) -> Path:
    path = folder / f"one-{number}.csv"
    path.write_text(ONE_ROW.format(number=number), encoding="utf-8")
    return path


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:g}s: {what}")
        time.sleep(0.2)


def watchdogs(home: Path) -> list[psutil.Process]:
    """The watchdog processes of home (`python -m flows.servers watch KIND HOME`)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "flows.servers" in cmdline and str(home.resolve()) in cmdline:
            found.append(process)
    return found


def answers(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def postmaster_pid(home: Path) -> int | None:
    try:
        return int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def servers_stopped_after(home: Path) -> Iterator[None]:
    try:
        yield
    finally:
        erp_sync(home, "stop")


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A scratch folder outside pytest's basetemp: another pytest session on the machine rotates
    old basetemp folders away, which would delete a running server's data (and the socket path
    of a server stays short)."""
    folder = Path(tempfile.mkdtemp(prefix="erp-sync-servers-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A scratch folder of the test's own (see `scratch_folder`)."""
    with scratch_folder() as folder:
        yield folder


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """One ERP_SYNC_HOME with organisation acme for the tests of the module that need no fresh
    home: an embedded PostgreSQL (initdb) and a Prefect server cost seconds to start, so they
    share one, stopped when the module ends. Each test starts with a command that starts what
    is not running, so the tests pass in any order (`erp-sync stop` stops both servers)."""
    with scratch_folder() as folder:
        home = folder / "home"
        with servers_stopped_after(home):
            added = erp_sync(home, "org", "add", "acme")
            assert added.returncode == 0, added.stderr
            yield home


@pytest.fixture
def fresh_home(tmp_path: Path) -> Iterator[Path]:
    """An ERP_SYNC_HOME of the test's own with organisation acme, its servers stopped after."""
    folder = tmp_path / "home"
    with servers_stopped_after(folder):
        added = erp_sync(folder, "org", "add", "acme")
        assert added.returncode == 0, added.stderr
        yield folder


def test_the_prefect_server_is_started_once_and_reused_by_the_next_command(home: Path) -> None:
    # the pre-migrated Prefect database of this Prefect version (made once per machine)
    assert prepare_prefect_template(cache_dir()) is not None
    first = erp_sync(home, "import", str(one_row(home.parent, 1)), "--org", "acme")
    assert first.returncode == 0, first.stderr
    state = read_state(home, "prefect")
    assert state is not None and alive(state["pid"]) and alive(state["server_pid"])
    assert state["seeded"] is True  # the new home's Prefect database began as the template

    second = erp_sync(home, "import", str(one_row(home.parent, 2)), "--org", "acme")
    assert second.returncode == 0, second.stderr
    assert read_state(home, "prefect") == state  # the same server: same pids, same URL
    servers = [p for p in watchdogs(home) if "prefect" in p.cmdline()]
    assert [p.pid for p in servers] == [state["pid"]]  # the second command started none
    assert [c.pid for c in servers[0].children()] == [state["server_pid"]]


def test_the_shared_servers_stop_on_their_own_after_the_idle_timeout(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with servers_stopped_after(home):
        # 15 seconds: long enough that a busy machine still finds them running when the import
        # returns (at 3 s they were sometimes gone before the test could read their state)
        idle = {"ERP_SYNC_SERVER_IDLE_MINUTES": "0.25"}
        assert erp_sync(home, "org", "add", "acme", **idle).returncode == 0
        done = erp_sync(home, "import", str(one_row(tmp_path, 1)), "--org", "acme", **idle)
        assert done.returncode == 0, done.stderr
        state = read_state(home, "prefect")
        postgres = postmaster_pid(home)
        assert state is not None and postgres is not None

        # Both watchdogs too: PostgreSQL's exits only after its server has stopped, so waiting
        # for the servers alone and then looking for it was a race (seen once in CI).
        wait_until(
            lambda: (
                not any(alive(p) for p in (state["pid"], state["server_pid"], postgres))
                and not watchdogs(home)
            ),
            90,
            "the Prefect server, PostgreSQL or one of their watchdogs still runs",
        )
        assert read_state(home, "prefect") is None and read_state(home, "postgres") is None
        assert not (home / "pgdata" / "postmaster.pid").exists()  # a clean shutdown


def test_a_killed_prefect_server_is_replaced_by_the_next_command(home: Path) -> None:
    assert erp_sync(home, "ui").returncode == 0
    killed = read_state(home, "prefect")
    assert killed is not None
    os.kill(killed["server_pid"], signal.SIGKILL)

    done = erp_sync(home, "import", str(one_row(home.parent, 3)), "--org", "acme")
    assert done.returncode == 0, done.stderr
    replacement = read_state(home, "prefect")
    assert replacement is not None and replacement["server_pid"] != killed["server_pid"]
    assert alive(replacement["server_pid"])
    wait_until(lambda: not alive(killed["pid"]), 10, "the old watchdog outlived its server")


def test_with_prefect_api_url_set_no_local_prefect_server_is_started(
    tmp_path: Path, prefect_api: str
) -> None:
    home = tmp_path / "home"
    with servers_stopped_after(home):
        assert erp_sync(home, "org", "add", "acme").returncode == 0
        done = erp_sync(
            home, "import", str(one_row(tmp_path, 1)), "--org", "acme", PREFECT_API_URL=prefect_api
        )
        assert done.returncode == 0, done.stderr
        ui = erp_sync(home, "ui", PREFECT_API_URL=prefect_api)
        assert ui.stdout.strip() == prefect_api.removesuffix("/api")
        assert read_state(home, "prefect") is None
        assert not (home / "prefect").exists()
        assert all("prefect" not in p.cmdline() for p in watchdogs(home))


def test_killing_an_import_midway_leaves_no_process_of_it_but_the_shared_servers(
    fresh_home: Path,
) -> None:
    home = fresh_home  # the import starts the Prefect server: its kill must not stop it
    rows = "".join(f"{n:08d},Customer {n},EUR,en\n" for n in range(200_000))
    big = home.parent / "big.csv"
    big.write_text("erp_customer_number,name,default_currency,default_language\n" + rows)
    command = subprocess.Popen(
        _cli(["import", str(big), "--org", "acme"]),
        cwd=home.parent,
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    descendants: dict[int, str] = {}
    parent = psutil.Process(command.pid)
    deadline = time.monotonic() + 120
    running_since: float | None = None
    # Until the flow has run for a while: two seconds after the Prefect server answered.
    while running_since is None or time.monotonic() - running_since < 2:
        assert command.poll() is None, "the import finished before it could be killed"
        assert time.monotonic() < deadline, "the import did not get going"
        with contextlib.suppress(psutil.Error):
            for child in parent.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    descendants.setdefault(child.pid, " ".join(child.cmdline()))
        state = read_state(home, "prefect")
        if running_since is None and state is not None and answers(state["url"]):
            running_since = time.monotonic()
        time.sleep(0.05)
    os.kill(command.pid, signal.SIGKILL)
    command.wait()
    time.sleep(1)

    state = read_state(home, "prefect")
    assert state is not None
    shared = {state["pid"], state["server_pid"], *(p.pid for p in watchdogs(home))}
    postgres = postmaster_pid(home)
    survivors = {
        pid: cmdline
        for pid, cmdline in descendants.items()
        if alive(pid) and pid not in shared and pid != postgres
        and not psutil.Process(pid).name().startswith("postgres")
    }  # fmt: skip
    assert survivors == {}
    # Nothing like Prefect's temporary server was ever started by the command.
    assert not any("uvicorn" in c or "server start" in c for c in descendants.values()), descendants
    # The servers it used still serve the next command.
    assert erp_sync(home, "org", "list").returncode == 0


def test_erp_sync_stop_stops_both_servers_and_says_so(home: Path) -> None:
    assert erp_sync(home, "org", "list").returncode == 0  # PostgreSQL runs
    assert erp_sync(home, "ui").returncode == 0  # and the Prefect server
    state = read_state(home, "prefect")
    postgres = postmaster_pid(home)
    assert state is not None and postgres is not None

    stopped = erp_sync(home, "stop")
    assert stopped.returncode == 0
    assert "Prefect server" in stopped.stdout and "embedded PostgreSQL" in stopped.stdout
    assert not any(alive(p) for p in (state["pid"], state["server_pid"], postgres))
    assert watchdogs(home) == []

    again = erp_sync(home, "stop")
    assert again.returncode == 0
    assert "nothing was running" in again.stdout


def test_erp_sync_ui_prints_the_address_of_the_local_prefect_ui(home: Path) -> None:
    shown = erp_sync(home, "ui")
    assert shown.returncode == 0, shown.stderr
    address = shown.stdout.strip()
    assert address.startswith("http://127.0.0.1:")
    state = read_state(home, "prefect")
    assert state is not None and state["url"] == f"{address}/api"
