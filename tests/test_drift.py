"""Drift profiles and `zoo drift` on their own: PSI checked against its definition as a
symmetric Kullback-Leibler divergence (scipy.special.rel_entr), the two-sample tests against
scipy.stats, binning that puts a served value where the same training value fell, text
features, and traffic that cannot be compared refused by name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from zoo.loop import drift
from zoo.loop import profile as drift_profile


def _profile(train: dict, outputs: dict | None = None) -> dict:
    return drift_profile.build(train, outputs or {}, seed=0)


def test_psi_is_the_symmetric_kullback_leibler_divergence_of_the_bin_shares():
    expected = np.array([0.1, 0.2, 0.3, 0.4])
    actual = np.array([0.25, 0.25, 0.25, 0.25])
    reference = float(np.sum(special.rel_entr(actual, expected) + special.rel_entr(expected, actual)))
    assert drift.psi(expected, actual) == pytest.approx(reference, rel=1e-12)
    assert drift.psi(expected, expected) == 0.0


def test_training_rows_served_back_through_a_csv_have_no_drift_at_all(tmp_path):
    rng = np.random.default_rng(1)
    # Discrete values (as wine's are) sit on the decile edges: a served 9.3 must fall where a training 9.3 fell.
    train = {"alcohol": np.round(rng.normal(10.4, 1.0, 1200), 1).astype(np.float32),
             "acidity": rng.gamma(2.0, 1.5, 1200).astype(np.float32)}
    profile = _profile(train)
    pd.DataFrame(train).to_csv(tmp_path / "served.csv", index=False)
    served = pd.read_csv(tmp_path / "served.csv")  # float64 text, as zoo logs writes it
    report = drift.compare(profile, served, model="m", version=1)
    assert [c.psi for c in report.features] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert report.drifted == []


def test_a_shift_is_ranked_first_and_its_test_is_scipys_two_sample_test():
    rng = np.random.default_rng(2)
    train = {name: rng.normal(0, 1, 2000).astype(np.float32) for name in ("a", "b", "c")}
    profile = _profile(train)
    served = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(1.5, 1, 400), "c": rng.normal(0.3, 1, 400)})
    report = drift.compare(profile, served, model="m", version=1)
    assert [c.name for c in report.features] == ["b", "c", "a"]
    assert [c.name for c in report.drifted] == ["b"]
    reference = stats.ks_2samp(profile["features"]["b"]["sample"], served["b"].to_numpy())
    assert report.features[0].statistic == pytest.approx(reference.statistic)
    assert report.features[0].p_value == pytest.approx(reference.pvalue)
    # A p-value threshold, when asked for, drifts the small shift too.
    strict = drift.compare(profile, served, model="m", version=1, thresholds=drift.Thresholds(alpha=0.01))
    assert {c.name for c in strict.drifted} == {"b", "c"}


def test_a_text_feature_is_compared_by_its_categories_with_a_chi_square_test():
    rng = np.random.default_rng(3)
    places = np.array(["INLAND", "NEAR BAY", "<1H OCEAN"], dtype=object)
    train = {"ocean_proximity": rng.choice(places, 3000, p=[0.3, 0.2, 0.5])}
    profile = _profile(train)
    assert profile["features"]["ocean_proximity"]["kind"] == "categorical"
    served = pd.DataFrame({"ocean_proximity": rng.choice(np.append(places, "ISLAND"), 500, p=[0.6, 0.1, 0.2, 0.1])})
    column = drift.compare(profile, served, model="m", version=1).features[0]
    counts = served["ocean_proximity"].value_counts()
    observed = [counts.get(c, 0) for c in profile["features"]["ocean_proximity"]["shares"]] + [counts["ISLAND"]]
    shares = np.maximum([*profile["features"]["ocean_proximity"]["shares"].values(), 0.0], drift.FLOOR)
    reference = stats.chisquare(observed, shares / shares.sum() * 500)
    assert column.test == "chi-square" and column.p_value == pytest.approx(reference.pvalue)
    assert column.drifted and column.psi > 0.2


def test_out_of_range_and_missing_values_are_counted_and_fail_their_thresholds():
    train = {"x": np.linspace(0, 1, 1000).astype(np.float32)}
    profile = _profile(train)
    served = pd.DataFrame({"x": [0.5] * 90 + [7.0] * 6 + ["n/a"] * 4})
    column = drift.compare(profile, served, model="m", version=1).features[0]
    assert (column.out_of_range, column.missing) == (6, 4)
    assert any("out of the training range" in r for r in column.reasons)
    assert any("missing or not numbers" in r for r in column.reasons)


def test_an_image_feature_is_profiled_as_its_row_mean_and_read_from_its_flattened_columns():
    rng = np.random.default_rng(4)
    train = {"pixels": rng.uniform(0, 1, (500, 2, 2)).astype(np.float32)}
    profile = _profile(train)
    assert list(profile["features"]) == ["pixels:row_mean"]
    flat = train["pixels"].reshape(500, 4)
    served = pd.DataFrame({f"pixels_{i}": flat[:, i] for i in range(4)})
    assert drift.compare(profile, served, model="m", version=1).features[0].psi == pytest.approx(0.0, abs=1e-9)


def test_traffic_without_a_feature_or_without_rows_is_refused_by_name():
    profile = _profile({"alcohol": np.arange(100, dtype=np.float32)})
    with pytest.raises(drift.DriftError, match="no column 'alcohol'.*they have: alcohl"):
        drift.compare(profile, pd.DataFrame({"alcohl": [1.0]}), model="m", version=1)
    with pytest.raises(drift.DriftError, match="no served rows of m"):
        drift.compare(profile, pd.DataFrame({"alcohol": []}), model="m", version=1)


def test_the_report_is_markdown_json_and_a_readable_grid_of_histograms(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(5)
    train = {f"f{i}": rng.normal(0, 1, 1000).astype(np.float32) for i in range(7)}
    profile = _profile(train, {"prediction": rng.normal(5, 1, 200).astype(np.float32)})
    served = pd.DataFrame({**{f"f{i}": rng.normal(0, 1, 300) for i in range(7)},
                           "prediction": rng.normal(6, 1, 300)})
    served["f3"] += 2.0
    report = drift.compare(profile, served, model="m", version=3)
    page = drift.write_report(report, profile, tmp_path)
    text = page.read_text()
    assert text.startswith("# Drift: m v3") and "**Drift**: `f3`, `prediction`" in text
    assert json.loads((tmp_path / "drift.json").read_text())["drifted"] == ["f3", "prediction"]
    height, width, _ = matplotlib.image.imread(tmp_path / "features.png").shape
    assert width <= 3 * 4.6 * 90 + 1 and height >= 3 * 3.3 * 90 - 1  # 7 panels: 3 rows of at most 3


def test_a_version_without_a_profile_says_how_to_get_one(tmp_path):
    from zoo.errors import ZooError

    (tmp_path / "models" / "m" / "1").mkdir(parents=True)
    (tmp_path / "rows.csv").write_text("x\n1\n")
    with pytest.raises(ZooError, match="has no drift_profile.json .*zoo export RUN_DIR"):
        drift.run(tmp_path / "models", "m", [str(tmp_path / "rows.csv")], version=1)
