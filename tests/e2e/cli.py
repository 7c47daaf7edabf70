"""Run `erp-sync` as a user does: in-process through `flows.cli.main`, or as a subprocess.

Both return a `Result(exit_code, stdout, stderr)`; the environment of a call is a `CliEnv`
(DATABASE_URL, the session's Prefect API, a working directory and any extra variables).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from flows import settings as settings_module

REPO = Path(__file__).resolve().parents[2]

# Variables of the test process that would change what the CLI does; a call sets its own.
_CLEARED = ("DATABASE_URL", "ERP_SYNC_REPORT_DIR", "ERP_SYNC_HOME", "ERP_SYNC_LOG_LEVEL")


@dataclass(frozen=True)
class Result:
    """What one CLI call did."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together, for checks that care about neither in particular."""
        return self.stdout + self.stderr

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)


@dataclass(frozen=True)
class CliEnv:
    """Where a CLI call runs: its database, Prefect API, working directory and extra variables."""

    db_url: str
    prefect_api: str
    cwd: Path
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_vars(self, **variables: str) -> CliEnv:
        """The same environment plus (or overriding) some variables."""
        return replace(self, extra={**self.extra, **variables})

    def variables(self) -> dict[str, str]:
        """The erp-sync variables of a call (DATABASE_URL, PREFECT_API_URL and the extras)."""
        return {"DATABASE_URL": self.db_url, "PREFECT_API_URL": self.prefect_api, **self.extra}


def run_cli(args: Sequence[str], env: CliEnv) -> Result:
    """Run `erp-sync ARGS` in this process and return its exit code and captured output.

    The settings cache is cleared before and after, so the call reads `env` and the next test
    does not inherit it. PREFECT_API_URL is already active through the `prefect_api` fixture.
    """
    from flows.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in _CLEARED:
            mp.delenv(name, raising=False)
        for name, value in env.variables().items():
            if name != "PREFECT_API_URL":  # the session's harness holds Prefect's settings
                mp.setenv(name, value)
        mp.chdir(env.cwd)
        settings_module.get_settings.cache_clear()
        code: int
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(list(args))
        except SystemExit as exc:
            code = _exit_code(exc)
        else:  # pragma: no cover - main always exits
            code = 0
        finally:
            settings_module.get_settings.cache_clear()
            _drop_handlers_bound_to(err)
    _collect_engines()
    return Result(code, out.getvalue(), err.getvalue())


_calls = 0


def _collect_engines() -> None:
    """Every command opens engines that sit in reference cycles with their pooled connections;
    collect them now and then, so that a long in-process session stays under max_connections
    (a full collection costs about 0.3 s, too much for every call)."""
    global _calls
    _calls += 1
    if _calls % 15 == 0:
        gc.collect()


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    return 1  # sys.exit("message") exits 1 after printing the message


def _drop_handlers_bound_to(stream: io.StringIO) -> None:
    """`main` adds a stderr handler to erp-sync's loggers on every call; in one process they
    would pile up (and write into the captures of earlier calls), so remove this call's."""
    import logging

    for name in ("flows", "loaders", "validators"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "stream", None) is stream:
                logger.removeHandler(handler)


def subprocess_env(env: CliEnv) -> dict[str, str]:
    """The environment of an erp-sync subprocess: this one's, minus erp-sync's, plus `env`."""
    variables = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    variables.update(env.variables())
    variables["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), variables.get("PYTHONPATH", "")) if p
    )
    variables.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return variables


def cli_command(args: Sequence[str]) -> list[str]:
    """The argv of `erp-sync ARGS` run by this interpreter (the package has no __main__)."""
    return [sys.executable, "-c", "from flows.cli import main; main()", *args]


def start_cli_subprocess(args: Sequence[str], env: CliEnv) -> subprocess.Popen[str]:
    """Start `erp-sync ARGS` in a new process (own process group) and return it running."""
    return subprocess.Popen(
        cli_command(args),
        cwd=env.cwd,
        env=subprocess_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> Result:
    """Wait for a started CLI process; kill it (and fail the test) when it outlives `timeout`."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(
            f"erp-sync did not finish within {timeout:g}s: {process.args!r}\n"
            f"stdout:\n{stdout}\nstderr:\n{stderr}"
        )
    return Result(process.returncode, stdout, stderr)


def run_cli_subprocess(args: Sequence[str], env: CliEnv, timeout: float = 120) -> Result:
    """Run `erp-sync ARGS` in a new process with `env`, in `env.cwd`, bounded by `timeout`."""
    return finish(start_cli_subprocess(args, env), timeout)
