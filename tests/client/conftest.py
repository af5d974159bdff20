"""The client tests run against the serving tests' embedded server and model repository."""

import numpy as np
import pandas as pd
import pytest

from tests.serving.conftest import channel, repository, server  # noqa: F401  (shared fixtures)

ROWS = 5000  # wine_csv's rows: enough for several request batches


@pytest.fixture(scope="module")
def wine_csv(repository, tmp_path_factory):  # noqa: F811  (the fixture imported above)
    """Several thousand wine rows (the test split, resampled) with an id column."""
    zoo_model = repository.zoo_models["dnn-regressor"]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(zoo_model.data.test), ROWS)
    frame = pd.DataFrame({name: zoo_model.data.test.features[name][picks] for name in zoo_model.input_names})
    frame.insert(0, "wine_id", [f"w{i:05d}" for i in range(ROWS)])
    path = tmp_path_factory.mktemp("csv") / "wines.csv"
    frame.to_csv(path, index=False)
    return path, frame
