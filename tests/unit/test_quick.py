"""benchmarks/quick.py: every measure with a target says whether the median met it (pure)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import quick


def test_the_ten_thousand_customer_import_is_held_against_the_floor_plus_three_seconds(
    tmp_path: Path,
) -> None:
    bench = quick.Bench(tmp_path, tmp_path)
    bench.times = {"floor": [2.0, 3.0, 2.5], quick.TEN_THOUSAND: [5.0, 6.0, 5.4]}
    bench.cpu = {name: [1.0] for name in bench.times}
    row = {r["measure"]: r for r in quick.summarise(bench)["measures"]}[quick.TEN_THOUSAND]
    assert (row["target"], row["target_s"], row["met"]) == ("floor + 3 s", 5.5, True)

    bench.times[quick.TEN_THOUSAND] = [5.6, 5.7, 5.8]
    row = {r["measure"]: r for r in quick.summarise(bench)["measures"]}[quick.TEN_THOUSAND]
    assert (row["over_floor_s"], row["met"]) == (3.2, False)
