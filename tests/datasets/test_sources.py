"""Every source parses its real file format into named features, a target and a seeded split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from zoo.datasets import list_datasets, load_dataset
from zoo.errors import DatasetError

WINE_FEATURES = (
    "fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides",
    "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates", "alcohol",
)  # fmt: skip
CACHE = Path(os.environ.get("ZOO_DATA_DIR", "data"))


def test_every_source_is_registered():
    assert set(list_datasets()) >= {
        "red-wine", "cereals", "california-housing", "fashion-mnist", "digits", "coffee-roasting", "csv",
    }
    assert list_datasets("c*") == ["california-housing", "cereals", "coffee-roasting", "csv"]


def test_red_wine_has_named_features_and_all_rows(load):
    data = load("red-wine")
    assert data.feature_names == WINE_FEATURES
    assert data.task == "regression" and data.target_name == "quality"
    assert sum(data.split["rows"].values()) == 1599
    targets = np.concatenate([data.train.target, data.validation.target, data.test.target])
    assert set(np.unique(targets)) <= set(range(3, 9))
    assert data.train.features["alcohol"].dtype == np.float32


def test_red_wine_cells_that_lost_their_decimal_point_are_restored(load):
    data = load("red-wine")
    columns = {k: np.concatenate([s.features[k] for s in (data.train, data.validation, data.test)])
               for k in ("alcohol", "density", "volatile_acidity")}
    assert columns["alcohol"].max() <= 15.5 and columns["density"].max() < 1.01
    assert columns["volatile_acidity"].max() < 1.6
    if (CACHE / "winequality-red.csv").read_text().count("956666666666667"):  # the published file
        assert np.isclose(columns["alcohol"], 9.56666666666667).sum() >= 1
        assert np.isclose(columns["density"], 1.00369).sum() == 2


def test_red_wine_as_multiclass_names_the_quality_classes(load):
    data = load("red-wine", task="multiclass")
    assert data.class_names[0] == "3" and list(data.class_names) == sorted(data.class_names, key=int)
    assert data.train.target.dtype == np.int64
    assert data.train.target.max() < len(data.class_names)


def test_red_wine_accepts_the_comma_separated_kaggle_upload(tmp_path, load):
    published = (CACHE / "winequality-red.csv").read_text(encoding="utf-8").splitlines()
    header = published[0].replace('"', "").replace(";", ",")
    kaggle = tmp_path / "winequality-red.csv"
    kaggle.write_text("\n".join([header] + [line.replace(";", ",") for line in published[1:]]) + "\n")
    data = load_dataset("red-wine", path=str(kaggle))
    reference = load("red-wine")
    np.testing.assert_array_equal(data.test.features["alcohol"], reference.test.features["alcohol"])
    np.testing.assert_array_equal(data.train.target, reference.train.target)


def test_a_truncated_file_is_reported_not_parsed(tmp_path):
    text = (CACHE / "winequality-red.csv").read_text(encoding="utf-8")
    cut = tmp_path / "cut-mid-line.csv"
    cut.write_text(text[: len(text) // 2])  # ends inside a row
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_dataset("red-wine", path=str(cut))
    lines = text.splitlines()
    lines[10] = ";".join(lines[10].split(";")[:5])
    short_row = tmp_path / "short-row.csv"
    short_row.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="corrupt or truncated: line 11 has 5 fields, the header has 12"):
        load_dataset("red-wine", path=str(short_row))
    lines = text.splitlines()
    short = tmp_path / "cut-at-line.csv"
    short.write_text("\n".join(lines[:1000]) + "\n")  # ends cleanly, rows missing
    with pytest.raises(DatasetError, match="truncated: 999 rows, the published file has 1599"):
        load_dataset("red-wine", path=str(short))


def test_a_corrupt_cell_is_reported_with_its_line_and_column(tmp_path):
    lines = (CACHE / "winequality-red.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[10].split(";")
    fields[8] = "three"
    lines[10] = ";".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"line 11, column 'pH': expected a number, got 'three'"):
        load_dataset("red-wine", path=str(bad))


def test_cereals_drop_the_rows_marked_minus_one(load):
    data = load("cereals")
    assert sum(data.split["rows"].values()) == 74
    assert "name" not in data.feature_names  # an identifier, not a feature
    assert data.feature("mfr").dtype == "string"
    for split in (data.train, data.validation, data.test):
        for column in ("carbo", "sugars", "potass"):
            assert (split.features[column] >= 0).all()


def test_california_housing_derives_scikit_learns_features(load):
    data = load("california-housing")
    assert data.feature_names == (
        "MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude",
    )
    assert sum(data.split["rows"].values()) == 20640 - 207
    target = np.concatenate([data.train.target, data.test.target])
    assert 0.1 < target.min() and target.max() <= 5.00001 + 1e-6  # units of $100,000
    for split in (data.train, data.test):
        for column in split.features.values():
            assert np.isfinite(column).all()
    # The first block group of the raw file, derived by hand.
    first = (CACHE / "housing.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    lon, lat, age, rooms, bedrooms, population, households, income, value = map(float, first[:9])
    everything = {k: np.concatenate([s.features[k] for s in (data.train, data.validation, data.test)])
                  for k in data.feature_names}
    targets = np.concatenate([data.train.target, data.validation.target, data.test.target])
    (row,) = np.nonzero((everything["MedInc"] == np.float32(income)) & (everything["Latitude"] == np.float32(lat)))
    expected = {"HouseAge": age, "AveRooms": rooms / households, "AveBedrms": bedrooms / households,
                "Population": population, "AveOccup": population / households, "Longitude": lon}
    for name, value_expected in expected.items():
        assert everything[name][row[0]] == pytest.approx(value_expected, rel=1e-6), name
    assert targets[row[0]] == pytest.approx(value / 100_000, rel=1e-6)


def test_digits_are_bundled_images(load):
    data = load("digits")
    assert data.features[0].name == "image" and data.features[0].shape == (8, 8)
    assert data.class_names == tuple("0123456789")
    assert sum(data.split["rows"].values()) == 1797


def test_coffee_roasting_is_generated_from_a_seed():
    first = load_dataset("coffee-roasting")
    again = load_dataset("coffee-roasting")
    other = load_dataset("coffee-roasting", data_seed=7)
    np.testing.assert_array_equal(first.train.features["temperature"], again.train.features["temperature"])
    assert not np.array_equal(first.train.features["temperature"], other.train.features["temperature"])
    assert first.class_names == ("bad", "good")
    assert 0.1 < first.train.target.mean() < 0.9  # both classes are represented


def test_the_split_is_deterministic_and_follows_the_fractions():
    a = load_dataset("red-wine", seed=1)
    b = load_dataset("red-wine", seed=1)
    c = load_dataset("red-wine", seed=2)
    np.testing.assert_array_equal(a.test.features["alcohol"], b.test.features["alcohol"])
    assert not np.array_equal(a.test.features["alcohol"], c.test.features["alcohol"])
    d = load_dataset("red-wine", validation_fraction=0.1, test_fraction=0.3)
    assert d.split["rows"] == {"train": 959, "validation": 160, "test": 480}


def test_bad_fractions_and_options_name_the_problem():
    with pytest.raises(DatasetError, match="test_fraction must be between 0 and 1"):
        load_dataset("red-wine", test_fraction=1.5)
    with pytest.raises(DatasetError, match="must leave rows to train on"):
        load_dataset("red-wine", validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(DatasetError, match="does not take option.*colour"):
        load_dataset("red-wine", colour="red")
    with pytest.raises(DatasetError, match="unknown dataset 'white-wine'.*red-wine"):
        load_dataset("white-wine")
    with pytest.raises(DatasetError, match="a binary task needs exactly 2 classes"):
        load_dataset("red-wine", task="binary")


def test_a_user_csv_infers_text_columns_and_the_task(tmp_path):
    path = tmp_path / "pets.csv"
    rows = ["weight,legs,colour,kind"]
    rows += [f"{3 + i % 7},{4 if i % 3 else 2},{['black', 'white'][i % 2]},{['cat', 'bird'][i % 3 == 0]}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    data = load_dataset("csv", path=str(path), target="kind")
    assert data.task == "binary" and data.class_names == ("bird", "cat")
    assert data.feature("colour").dtype == "string" and data.feature("weight").dtype == "float32"
    regression = load_dataset("csv", path=str(path), target="weight")
    assert regression.task == "regression"


def test_a_user_csv_reports_bad_cells_and_columns(tmp_path):
    path = tmp_path / "prices.csv"
    rows = ["size,rooms,price"] + [f"{50 + i},{1 + i % 4},{100 + 3 * i}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match="has no column 'cost'; its columns are: size, rooms, price"):
        load_dataset("csv", path=str(path), target="cost")
    rows[17] = "67,2,n/a"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"line 18, column 'price': expected a number, got 'n/a'"):
        load_dataset("csv", path=str(path), target="price")
    rows[17] = "67,,150"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"line 18, column 'rooms': expected a number, got an empty cell"):
        load_dataset("csv", path=str(path), target="price")
    with pytest.raises(DatasetError, match="needs path=FILE and target=COLUMN"):
        load_dataset("csv", path=str(path))
