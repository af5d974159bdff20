"""Synthetic sources, generated from a seed so every run sees the same rows."""

from __future__ import annotations

import numpy as np

from zoo.datasets.base import Table, register_dataset


@register_dataset(
    "coffee-roasting",
    task="binary",
    description="synthetic coffee roasts: temperature (C) and duration (min) -> good/bad roast",
)
def coffee_roasting(*, rows: int = 1000, data_seed: int = 2) -> Table:
    """The coffee-roasting set of Andrew Ng's course (C2 W1), in degrees Celsius.

    A roast is good inside a triangle: hotter than 175 C, longer than 12 minutes, and
    below the line where a hotter roast must be shorter (duration <= 21 - 3 * t / 85,
    from 14.8 minutes at 175 C down to 11.8 at 260 C).
    """
    rng = np.random.default_rng(data_seed)
    temperature = rng.uniform(150.0, 285.0, rows)
    duration = rng.uniform(11.5, 15.5, rows)
    limit = 21.0 - 3.0 * temperature / 85.0
    good = (temperature > 175) & (temperature < 260) & (duration > 12) & (duration < 15) & (duration <= limit)
    return Table(
        {"temperature": temperature, "duration": duration}, good.astype(np.int64), "roast",
        f"synthetic (rows={rows}, data_seed={data_seed})", class_names=("bad", "good"),
    )
