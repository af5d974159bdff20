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
