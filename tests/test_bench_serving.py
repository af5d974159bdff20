"""The serving benchmark in its smoke mode: every cell produces numbers, and every server
answer it checks equals the in-process answer (bench/serving.py raises otherwise)."""

from __future__ import annotations

from bench.serving import API, BATCH_SIZES, CONCURRENCY, MODELS, run


def test_smoke_mode_fills_every_cell(tmp_path):
    report = run(smoke=True, out_dir=str(tmp_path))
    cells = report["cells"]
    assert len(cells) == len(MODELS) * len(API) * len(BATCH_SIZES) * len(CONCURRENCY) * 2
    for cell in cells:
        assert cell["requests"] >= 1 and cell["rows_per_s"] > 0 and cell["ratio"] > 0
        assert cell["p99_ms"] >= cell["p50_ms"] > 0
    assert {(c["api"], c["batching"]) for c in cells} == {(a, b) for a in API for b in (False, True)}
    assert list(tmp_path.iterdir()) == []  # smoke numbers are not figures: nothing is written
    import json

    json.dumps(report)  # what the full run writes to docs/performance.json
