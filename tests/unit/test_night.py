"""benchmarks/night.py: shard packing and the simulated night (pure, no database)."""

from __future__ import annotations

import pytest

from benchmarks import night

# A model in the range this machine measured: a few seconds of start-up, read + validate at
# some MB/s, a load of some ten thousand rows a second, the database two loads' worth fast.
MODEL = night.Model(
    startup_s=5.0,
    read_validate=night.Affine(fixed_s=1.0, rate=5e6),
    load=night.Affine(fixed_s=0.3, rate=20_000.0),
    report=night.Affine(fixed_s=0.3, rate=200_000.0),
    bytes_per_customer=500.0,
    rows_per_customer=2.2,
    capacity=night.Capacity(((1, 1.0), (2, 1.6), (4, 1.7))),
)
CUSTOMERS = night.Distribution().sample(2_000, seed=3)


def test_packing_never_splits_an_organisation_and_balances_bytes() -> None:
    sizes = [1_000_000, *CUSTOMERS[:500]]
    shards = night.pack_shards(sizes, 8)
    placed = sorted(i for shard in shards for i in shard)
    assert placed == list(range(len(sizes)))  # each organisation in exactly one shard
    assert len(shards) == 8
    assert shards[0] == [0]  # larger than a fair share: alone, and handed out first
    totals = [sum(sizes[i] for i in shard) for shard in shards]
    assert totals == sorted(totals, reverse=True)
    rest = totals[1:]
    assert max(rest) - min(rest) <= max(sizes[1:])  # LPT: within one organisation
    assert night.pack_shards([5, 3], 10) == [[0], [1]]  # never more shards than organisations
    with pytest.raises(ValueError):
        night.pack_shards([1], 0)


def test_more_workers_never_finish_later() -> None:
    finishes = [night.simulate(MODEL, CUSTOMERS, w, slots=4).finish_s for w in (1, 2, 4, 16, 64)]
    assert finishes == sorted(finishes, reverse=True)
    assert finishes[0] > 4 * finishes[-1]
    one = night.simulate(MODEL, CUSTOMERS, 1, slots=4)
    # one worker: never waits for a slot, and its time is all work and one start-up per shard
    assert one.slot_wait_s == 0
    assert one.bottleneck == "the workers"
    assert one.finish_s == pytest.approx(
        one.startup_s + one.no_slot_s + sum(MODEL.costs(c)[1] for c in CUSTOMERS)
    )


def test_few_slots_make_the_database_the_bottleneck() -> None:
    few = night.simulate(MODEL, CUSTOMERS, 64, slots=1)
    assert few.bottleneck == "the database slots"
    assert few.slot_wait_s > few.load_s  # the workers mostly wait for the one slot
    assert few.finish_s >= few.db_floor_s
    roomy = night.Model(**{**MODEL.__dict__, "capacity": None})  # a core per slot
    many = night.simulate(roomy, CUSTOMERS, 64, slots=64)
    assert many.slot_wait_s == 0
    assert many.finish_s < few.finish_s
    assert many.finish_s >= many.largest_alone_s  # the largest organisation is the floor


def test_loads_share_the_database_as_measured() -> None:
    # two equal organisations, two workers, the database as fast for two loads as for one:
    # both loads take twice as long as alone
    flat = night.Model(**{**MODEL.__dict__, "capacity": night.Capacity(((1, 1.0), (2, 1.0)))})
    rv, load, report = flat.costs(100_000)
    both = night.simulate(flat, [100_000, 100_000], 2, slots=2, shards_per_worker=1)
    assert both.finish_s == pytest.approx(flat.startup_s + rv + 2 * load + report)
    assert night.Capacity(((1, 1.0), (2, 1.6), (4, 1.7))).multiplier(3) == pytest.approx(1.65)
    assert night.Capacity(((1, 1.0), (2, 1.6))).multiplier(16) == pytest.approx(1.6)


def test_fit_recovers_a_line() -> None:
    points = [(x, 2.0 + x / 1e6) for x in (1e3, 1e4, 1e5, 1e6)]
    line = night.fit(points)
    assert line.fixed_s == pytest.approx(2.0, abs=1e-3)
    assert line.rate == pytest.approx(1e6, rel=1e-3)


def test_a_command_gets_the_flow_run_that_started_while_it_ran() -> None:
    # a first import and a re-sync into one organisation: each command its own flow run
    def stamp(second: float) -> str:
        return f"2026-12-02T10:00:{second:06.3f}Z"

    runs, tasks = [], []
    for run_id, begin in (("a", 5.0), ("b", 35.0)):
        runs.append({"id": run_id, "parameters": {"org": "o"}, "start_time": stamp(begin),
                     "end_time": stamp(begin + 10)})  # fmt: skip
        for n, step in enumerate(("read", "validate", "load", "report")):
            tasks.append({"flow_run_id": run_id, "name": f"{step}-1a2", "start_time":
                          stamp(begin + 2 * n), "end_time": stamp(begin + 2 * n + 2)})  # fmt: skip
    start = night._epoch(stamp(0))
    first = night.Command("first", "first", 10, "o", 100, started=start + 4, wall_s=20)
    resync = night.Command("resync", "resync", 10, "o", 100, started=start + 34, wall_s=20)
    alone = night.Command("other", "first", 10, "p", 100, started=start, wall_s=60)
    missing = night.step_times([resync, first, alone], list(reversed(runs)), tasks)
    assert missing == [alone]
    assert first.steps["load_start"] == pytest.approx(start + 9)
    assert resync.steps["load_start"] == pytest.approx(start + 39)
    assert resync.steps["read_validate_s"] == pytest.approx(4)
    assert resync.steps["load_s"] == pytest.approx(2)
    assert resync.steps["report_s"] == pytest.approx(4)
