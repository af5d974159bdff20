"""Stand-in copies of the reference datasets, for a clone without ../shared/datasets.

Same separators, quoting, columns, row counts and missing-value conventions as the
published files; the values are synthetic but carry a learnable signal, so the training
tests mean the same thing on either data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WINE_HEADER = [
    "fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
    "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol",
    "quality",
]  # fmt: skip


def write_standin_datasets(folder: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    _write_wine(folder / "winequality-red.csv", rng)
    _write_cereals(folder / "cereal.csv", rng)
    _write_housing(folder / "housing.csv", rng)


def _write_wine(path: Path, rng) -> None:
    rows = 1599
    # Each column near the published file's mean, with a tenth of it as spread (density less).
    means = np.array([8.3, 0.53, 0.27, 2.5, 0.087, 15.9, 46.0, 0.9967, 3.31, 0.66, 10.4])
    spread = means * 0.1
    spread[7] = 0.0015
    features = np.abs(rng.normal(size=(rows, 11)) * spread + means)
    quality = np.clip(np.round(5.6 + 0.8 * (features[:, 10] - 10.4) + rng.normal(0, 0.5, rows)), 3, 8)
    lines = [";".join(f'"{name}"' for name in WINE_HEADER)]
    for row, q in zip(features, quality):
        lines.append(";".join(f"{v:.4g}" for v in row) + f";{int(q)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_cereals(path: Path, rng) -> None:
    header = "name,mfr,type,calories,protein,fat,sodium,fiber,carbo,sugars,potass,vitamins,shelf,weight,cups,rating"
    lines = [header]
    for i in range(77):
        sugars, fiber, protein = rng.integers(0, 15), rng.integers(0, 10), rng.integers(1, 6)
        calories = 50 + 5 * sugars + 2 * fiber + 4 * protein + rng.integers(-5, 6)
        carbo = -1 if i == 3 else rng.integers(5, 22)
        potass = -1 if i in (10, 20) else rng.integers(20, 300)
        lines.append(
            f"Cereal {i},{'GKNPQR'[i % 6]},{'CH'[i % 2]},{calories},{protein},{rng.integers(0, 4)},"
            f"{rng.integers(0, 300)},{fiber},{carbo},{sugars},{potass},25,{1 + i % 3},1,0.75,"
            f"{rng.uniform(20, 80):.6f}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_housing(path: Path, rng) -> None:
    rows = 20640
    income = rng.uniform(0.5, 15.0, rows)
    households = rng.integers(100, 2000, rows)
    rooms = households * rng.uniform(3, 7, rows)
    bedrooms = households * rng.uniform(0.8, 1.3, rows)
    population = households * rng.uniform(2, 4, rows)
    value = np.clip(income * 40000 + rng.normal(0, 30000, rows), 15000, 500001)
    lines = ["longitude,latitude,housing_median_age,total_rooms,total_bedrooms,population,households,"
             "median_income,median_house_value,ocean_proximity"]
    for i in range(rows):
        bedroom_cell = "" if i % 100 == 7 else f"{bedrooms[i]:.1f}"  # 207 empty cells, as published
        lines.append(
            f"{rng.uniform(-124, -114):.2f},{rng.uniform(32, 42):.2f},{rng.integers(1, 52)}.0,"
            f"{rooms[i]:.1f},{bedroom_cell},{population[i]:.1f},{households[i]}.0,{income[i]:.4f},"
            f"{value[i]:.1f},{['INLAND', 'NEAR BAY', '<1H OCEAN'][i % 3]}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
