"""``python -m tools.bench.silence_requests``: the bench's count of the silence check's requests, at a
small fleet (the bench runs it at 100,000 sensors)."""

from __future__ import annotations

import math

from lambdas.common import silence
from tools.bench import silence_requests


def test_each_run_polls_the_fleet_once_and_opens_each_outage_once() -> None:
    measured = silence_requests.measure(sensors=250, silent=70)
    first, second, after = measured["runs"]
    # stopped sensors 0-69 read at 11:59 + (i mod 60) s: phases 0-29 (40 of them) are silent by 12:02:30,
    # the other 30 by 12:03:30
    assert (first["outages"], second["outages"], after["outages"]) == (40, 30, 0)
    assert (second["silent_sensors"], after["silent_sensors"]) == (70, 70)
    for run, opened in zip(measured["runs"], (0, first["silent_sensors"], second["silent_sensors"]), strict=True):
        queries = run["requests"]["dynamodb:Query"]
        # the registry's shards, the watermarks, the open outages; a strong re-read of each new candidate and
        # of each open outage polled from a window head (a reading in a later window would count): no
        # sensor is queried, every one has a head in the window of the run or the one before, and nothing
        # grows with the minute or reads an index of time
        assert queries == silence.FLEET_SHARDS + 2 + run["outages"] + opened, run
        # the heads of the run's window, 100 a request, and of the window before for the 70 stopped sensors
        assert run["requests"]["dynamodb:BatchGetItem"] == math.ceil(250 / 100) + math.ceil(70 / 100), run
        assert run["requests"].get("sns:Publish", 0) == run["outages"]
        assert run["total"] == sum(run["requests"].values())
