"""``python -m tools.bench.silence_requests``: the bench's count of the silence check's requests, at a
small fleet (the bench runs it at 100,000 sensors)."""

from __future__ import annotations

from lambdas.common import silence
from tools.bench import silence_requests


def test_each_run_polls_the_fleet_once_and_opens_each_outage_once() -> None:
    measured = silence_requests.measure(sensors=250, silent=70)
    first, second, after = measured["runs"]
    # stopped sensors 0-69 read at 11:59 + (i mod 60) s: phases 0-29 (40 of them) are silent by 12:02:30,
    # the other 30 by 12:03:30
    assert (first["outages"], second["outages"], after["outages"]) == (40, 30, 0)
    assert (second["silent_sensors"], after["silent_sensors"]) == (70, 70)
    for run in measured["runs"]:
        queries = run["requests"]["dynamodb:Query"]
        # the registry's shards, the watermarks, the open outages, each sensor's newest item, and a strong
        # re-read of each new candidate: nothing grows with the minute, nothing reads an index of time
        assert queries == silence.FLEET_SHARDS + 2 + 250 + run["outages"], run
        assert run["requests"].get("dynamodb:BatchGetItem", 0) == 0
        assert run["requests"].get("sns:Publish", 0) == run["outages"]
        assert run["total"] == sum(run["requests"].values())
