"""Test set-up: offline data, quiet TensorFlow, and small shared fixtures.

The data cache points at the project's reference copies in ../shared/datasets when that
folder exists (CI and developer machines). Elsewhere (a clone on its own) it points at a
folder holding the copies the zoo ships (zoo/datasets/files): the same published files, so a
fresh clone tests exactly what CI tests. Stand-in files are written only where a test needs a
malformed or tiny file, and for Fashion-MNIST, which is not shipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("ZOO_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
REFERENCE_FILES = ("winequality-red.csv", "cereal.csv", "housing.csv")


def pytest_configure(config):
    from zoo.tensorflow_logs import import_tensorflow_quietly

    import_tensorflow_quietly()  # keep TensorFlow's C++ start-up lines out of the test output
    if all((SHARED_DATASETS / name).is_file() for name in REFERENCE_FILES):
        os.environ["ZOO_DATA_DIR"] = str(SHARED_DATASETS)
        config.zoo_data_source = f"reference copies in {SHARED_DATASETS}"
    else:
        folder = Path(tempfile.mkdtemp(prefix="zoo-shipped-datasets-"))
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        _copy_shipped_datasets(folder)
        os.environ["ZOO_DATA_DIR"] = str(folder)
        config.zoo_data_source = f"the copies shipped with the zoo, in {folder} ({SHARED_DATASETS} is absent)"


def _copy_shipped_datasets(folder: Path) -> None:
    import gzip

    from zoo.datasets.bundled import FILES

    for name in REFERENCE_FILES:
        if (FILES / name).is_file():
            shutil.copyfile(FILES / name, folder / name)
        else:
            with gzip.open(FILES / f"{name}.gz", "rb") as packed, open(folder / name, "wb") as out:
                shutil.copyfileobj(packed, out)


def pytest_report_header(config):
    return f"zoo datasets: {config.zoo_data_source}"


@pytest.fixture(scope="session")
def load():
    """`load(name, **options)`: load_dataset with a per-session cache (loading is pure)."""
    from zoo.datasets import load_dataset

    cache = {}

    def loader(name, **options):
        key = (name, repr(sorted(options.items())))  # option values may be lists
        if key not in cache:
            cache[key] = load_dataset(name, **options)
        return cache[key]

    return loader


@pytest.fixture()
def models_dir(tmp_path):
    return tmp_path / "models"
