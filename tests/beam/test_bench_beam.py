"""The Beam benchmark in its smoke mode: each way wrote one prediction per row (bench/beam.py
raises otherwise) and the ratios are against zoo predict, measured in the same process."""

from __future__ import annotations

import pytest

pytest.importorskip("apache_beam")

from bench.beam import SMOKE_ROWS, markdown, run  # noqa: E402


def test_smoke_mode_measures_every_way_against_zoo_predict(tmp_path):
    report = run(smoke=True, out_dir=str(tmp_path))
    assert report["rows"] == SMOKE_ROWS
    assert set(report["rows_per_s"]) == {"zoo predict", "beam savedmodel", "beam served"}
    assert all(rate > 0 for rate in report["rows_per_s"].values())
    assert report["ratio_to_zoo_predict"]["zoo predict"] == 1.0
    assert markdown(report).count("|") > 12
    assert list(tmp_path.iterdir()) == []  # smoke numbers are not figures: nothing is written
