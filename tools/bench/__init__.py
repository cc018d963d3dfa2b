"""Measurement: ``python -m tools.bench`` (``report``: every section, its targets and ``BENCHMARKS.md``)
and what it measures with: request counts on moto (``request_counts``), the run at scale (``scale``),
the silence check at scale (``silence_requests``), process-tree memory (``proctree``) and the stock
cdktf app it compares synthesis with (``stock_app``)."""
