"""``python -m tools.bench.silence_requests``: the bench's count of the silence check's requests, at a
small fleet (the bench runs it at 100,000 sensors)."""

from __future__ import annotations

from tools.bench import silence_requests


def test_the_worst_minute_finds_exactly_the_stopped_sensors_and_the_next_run_nothing_new() -> None:
    measured = silence_requests.measure(sensors=250, silent=7)
    first, burst, after = measured["runs"]
    assert first["outages"] == 0  # nothing is due at 12:02:30
    assert (burst["outages"], burst["silent_sensors"]) == (7, 7)
    assert (after["outages"], after["silent_sensors"]) == (0, 7)  # the re-read minute opens nothing twice
    # The burst reads every sensor's superseded entry: one BatchGetItem per 100 of them, at least.
    assert burst["requests"]["dynamodb:BatchGetItem"] >= 250 // 100
    assert burst["requests"]["sns:Publish"] == 7
    assert all(run["total"] == sum(run["requests"].values()) for run in measured["runs"])
