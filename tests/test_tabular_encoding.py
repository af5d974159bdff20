"""The piecewise-linear encoding against its definition (Gorishniy et al. 2022, eq. 2),
computed here with numpy from the same quantile edges."""

from __future__ import annotations

import numpy as np

from zoo.architectures.tabular import PiecewiseLinearEncoding, quantile_edges


def reference_ple(x: np.ndarray, edges: list[list[float]]) -> np.ndarray:
    rows = []
    for value_row in x:
        encoded = []
        for value, feature_edges in zip(value_row, edges):
            for low, high in zip(feature_edges[:-1], feature_edges[1:]):
                encoded.append(0.0 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0))
        rows.append(encoded)
    return np.asarray(rows)


def test_ple_matches_its_definition_including_repeated_edges():
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(size=500), rng.integers(0, 3, size=500)]).astype(np.float32)
    edges = quantile_edges(train, bins=8)
    assert len(edges[1]) == 9 and edges[1][-1] == edges[1][-2]  # 3 distinct values: padded
    probe = np.column_stack([rng.normal(scale=2, size=50), rng.integers(-1, 5, size=50)]).astype(np.float32)
    layer = PiecewiseLinearEncoding(edges)
    np.testing.assert_allclose(np.asarray(layer(probe)), reference_ple(probe, edges), atol=1e-6)


def test_ple_survives_its_config():
    edges = [[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]]
    copy = PiecewiseLinearEncoding.from_config(PiecewiseLinearEncoding(edges).get_config())
    probe = np.array([[1.5, 7.0]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(copy(probe)), [[1.0, 0.5, 0.0, 0.0]])


def test_rotated_coordinates_are_the_positions_projected_on_turned_axes():
    from zoo.architectures.coordinates import RotatedCoordinates

    positions = np.array([[34.05, -118.25], [37.77, -122.42], [1.0, 0.0]], dtype=np.float32)
    layer = RotatedCoordinates([30.0, 90.0, 135.0])
    radians = np.deg2rad([30.0, 90.0, 135.0])
    expected = positions[:, :1] * np.cos(radians) + positions[:, 1:] * np.sin(radians)
    np.testing.assert_allclose(np.asarray(layer(positions)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer(positions))[:, 1], positions[:, 1], atol=1e-5)  # 90 degrees: east
    copy = RotatedCoordinates.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(copy(positions)), np.asarray(layer(positions)))


def test_coordinates_must_name_two_of_the_models_features(load):
    import pytest

    from zoo.errors import ConfigError
    from zoo.registry import create_model

    data = load("california-housing")
    with pytest.raises(ConfigError, match="coordinates must name a latitude and a longitude"):
        create_model("ple-geo-regressor", data, coordinates=("Latitude", "Altitude"))
