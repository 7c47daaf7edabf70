"""The nightly sync's deployment: registered against the test Prefect server, read back.

`erp-sync serve` would block; these tests register the same deployment with `.apply()` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _prefect(prefect_api: str) -> None:
    """Every test here talks to the session's Prefect API."""


def test_the_served_deployment_registers_with_its_cron_timezone_inbox_and_limit_of_one(
    tmp_path: Path,
) -> None:
    from prefect import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy

    from flows.serve import build_deployment

    deployment = build_deployment(
        cron="30 3 * * 1-5", timezone="Europe/Berlin", inbox=tmp_path / "inbox", name="nightly-test"
    )
    deployment_id = deployment.apply()

    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
        flow = client.read_flow(stored.flow_id)
    assert flow.name == "nightly-sync"
    assert stored.name == "nightly-test"
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in stored.schedules] == [
        ("30 3 * * 1-5", "Europe/Berlin", True)
    ]
    assert stored.parameters == {"inbox": str((tmp_path / "inbox").resolve())}
    assert stored.global_concurrency_limit is not None
    assert stored.global_concurrency_limit.limit == 1
    assert stored.concurrency_options is not None
    assert stored.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
    assert stored.entrypoint == "flows.sync_flow.sync_inbox"


def test_the_deployment_defaults_to_2am_local_time_and_the_env_inbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.serve import build_deployment, local_timezone
    from flows.settings import get_settings

    monkeypatch.setenv("ERP_SYNC_INBOX", str(tmp_path / "from-env"))
    get_settings.cache_clear()
    deployment = build_deployment()
    get_settings.cache_clear()
    assert deployment.name == "nightly"
    [schedule] = deployment.schedules or []
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == local_timezone()
    assert deployment.parameters == {"inbox": str(tmp_path / "from-env")}


def test_the_inbox_defaults_to_the_inbox_folder_of_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.serve import build_deployment
    from flows.settings import get_settings

    monkeypatch.delenv("ERP_SYNC_INBOX", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    assert build_deployment().parameters == {"inbox": str(tmp_path.resolve() / "inbox")}


def test_the_local_timezone_is_an_iana_name() -> None:
    from zoneinfo import ZoneInfo

    from flows.serve import local_timezone

    ZoneInfo(local_timezone())  # raises for anything Prefect could not schedule in


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [("every night", "UTC", "cron"), ("0 2 * * *", "Mars/Olympus_Mons", "time zone")],
)
def test_a_bad_cron_or_timezone_is_refused_before_anything_is_served(
    cron: str, timezone: str, message: str
) -> None:
    from flows.serve import build_deployment

    with pytest.raises(ValueError, match=message):
        build_deployment(cron=cron, timezone=timezone)


def test_the_serve_command_exits_2_on_a_bad_timezone_without_serving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--timezone", "Nowhere/Town"])
    assert exit_info.value.code == 2
    assert "unknown time zone" in capsys.readouterr().err


def test_prefect_yaml_deploys_the_nightly_sync_flow_at_2am_one_run_at_a_time() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.flows import load_flow_from_entrypoint

    raw = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(raw)  # the schema `prefect deploy` reads it with
    [deployment] = [d for d in model.deployments if d.name == "nightly-sync"]
    assert deployment.work_pool is not None and deployment.work_pool.name == "erp-sync-pool"
    assert deployment.concurrency_limit is not None
    assert deployment.concurrency_limit.limit == 1  # type: ignore[union-attr]
    assert deployment.concurrency_limit.collision_strategy == "CANCEL_NEW"  # type: ignore[union-attr]
    [schedule] = raw["deployments"][0]["schedules"]
    assert schedule["cron"] == "0 2 * * *"

    assert deployment.entrypoint is not None
    path, _, name = deployment.entrypoint.partition(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{name}")
    assert flow.name == "nightly-sync"
    assert set(deployment.parameters) <= set(flow.parameters.properties)


def test_without_a_prefect_server_serve_starts_a_local_one_that_schedules_the_deployment(
    tmp_path: Path,
) -> None:
    import httpx

    from flows.serve import build_deployment, local_prefect_server

    with local_prefect_server(tmp_path / "home") as url:
        assert httpx.get(f"{url}/health", timeout=5).json() is True
        # The same registration `erp-sync serve` does, against the server it started.
        from prefect import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: url}):
            deployment_id = build_deployment("0 2 * * *", "UTC", tmp_path / "inbox").apply()
            with get_client(sync_client=True) as client:
                stored = client.read_deployment(deployment_id)
        assert [s.schedule.cron for s in stored.schedules] == ["0 2 * * *"]
    assert (tmp_path / "home" / "prefect" / "prefect.db").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)
