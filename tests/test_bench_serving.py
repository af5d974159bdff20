"""The serving benchmark in its smoke mode: every cell produces numbers, and every server
answer it checks equals the in-process answer (bench/serving.py raises otherwise)."""

from __future__ import annotations

import json

from bench.serving import API, BATCH_SIZES, CONCURRENCY, LOGGING_CELLS, MODELS, V2_API, V2_CELLS, run


def test_smoke_mode_fills_every_cell(tmp_path):
    report = run(smoke=True, out_dir=str(tmp_path))
    cells = report["cells"]
    v1_cells = len(MODELS) * len(API) * len(BATCH_SIZES) * len(CONCURRENCY) * 2
    assert len(cells) == v1_cells + len(MODELS) * len(V2_API) * len(V2_CELLS) * 2
    for cell in cells:
        assert cell["requests"] >= 1 and cell["rows_per_s"] > 0 and cell["ratio"] > 0
        assert cell["p99_ms"] >= cell["p50_ms"] > 0
    assert {(c["api"], c["batching"]) for c in cells} == {(a, b) for a in (*API, *V2_API) for b in (False, True)}
    # Request logging on against off: both APIs, and the logging server wrote what it served.
    logging_cells = report["logging"]
    assert len(logging_cells) == len(API) * len(LOGGING_CELLS)
    assert all(c["on"] > 0 and c["off"] > 0 and c["records_logged"] > 0 for c in logging_cells)
    assert list(tmp_path.iterdir()) == []  # smoke numbers are not figures: nothing is written

    # zoo predict wrote a prediction for every row (lifecycle.py raises otherwise), twice.
    predict = report["lifecycle"]["predict_csv"]
    assert predict["rows_per_s"] > 0 and predict["in_process_rows_per_s"] > 0
    assert predict["peak_mb"] > 0 and predict["quarter_peak_mb"] > 0
    cold = report["lifecycle"]["cold_start"]
    from zoo.registry import list_models

    assert cold["models"] == sorted(list_models())  # every zoo model, transfer-mlp and mlp-classifier included
    assert cold["seconds"] > 0 and cold["rss_mb"] > 0
    rollout = report["lifecycle"]["rollout"]
    assert rollout["failed"] == 0 and rollout["requests"] > 0  # zero failed requests is the contract
    assert rollout["peak_rss_mb"] >= rollout["steady_rss_mb"] > 0

    from bench.serving import markdown

    text = markdown(report)  # what the full run writes to docs/PERFORMANCE.md
    assert "## Targets" in text and "rollout" in text and text.count("| dnn-regressor |") == len(cells) // 2
    json.dumps(report)  # and to docs/performance.json
