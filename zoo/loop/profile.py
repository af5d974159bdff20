"""The drift profile: what a version's training rows and answers looked like, written at export.

`zoo drift` compares served traffic with it, so it holds what those comparisons need and no
more (a few tens of KB):

- per input feature, from the training split: count, missing, min, max, mean, std; the
  decile cut points and the share of training rows in each bin (the population stability
  index's expected shares); a seeded sample of at most SAMPLE_SIZE values (the two-sample
  test's and the histograms' reference); a text feature keeps its categories' shares.
- per output of the serving signature, the same, from the answers the exported model gives
  on the validation split (rows it did not train on, as served traffic is).

A feature with a shape per row (an image) is profiled as its row mean, named `<name>:row_mean`;
`zoo drift` computes the same from the served rows' `<name>_0..` columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

PROFILE_FILE = "drift_profile.json"
FORMAT = 1
SAMPLE_SIZE = 1000
BINS = 10  # deciles: PSI's usual binning
MAX_CATEGORIES = 50  # the rest of a text feature's categories are pooled as OTHER
OTHER = "<other>"
ROW_MEAN = ":row_mean"


def build(train_features: dict[str, np.ndarray], validation_outputs: dict[str, np.ndarray],
          seed: int = 0) -> dict[str, Any]:
    """The profile of a version: its training rows' features and its answers on validation rows."""
    rng = np.random.default_rng(seed)
    rows = len(next(iter(train_features.values()))) if train_features else 0
    outputs_rows = len(next(iter(validation_outputs.values()))) if validation_outputs else 0
    return {
        "format": FORMAT,
        "rows": {"train": rows, "validation": outputs_rows},
        "features": {name: column_profile(values, rng) for name, values in _columns(train_features).items()},
        "outputs": {name: column_profile(values, rng) for name, values in _columns(validation_outputs).items()},
    }


def _columns(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One column per name; a value with a shape per row becomes its row mean."""
    columns = {}
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.ndim > 1:
            columns[name + ROW_MEAN] = values.reshape(len(values), -1).astype(np.float64).mean(axis=1)
        else:
            columns[name] = values
    return columns


def column_profile(values: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """A numeric column's summary, bins and sample; a text column's category shares."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        text = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values])
        names, counts = np.unique(text, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
        shares = {str(names[i]): float(counts[i] / len(text)) for i in order}
        other = 1.0 - sum(shares.values())
        return {"kind": "categorical", "count": int(len(text)), "shares": shares,
                "other": max(0.0, float(other))}
    numbers = values.astype(np.float64)
    finite = numbers[np.isfinite(numbers)]
    if len(finite) == 0:
        return {"kind": "numeric", "count": int(len(numbers)), "missing": int(len(numbers)), "edges": [],
                "shares": [1.0], "sample": []}
    edges = [_float32(e) for e in bin_edges(finite)]
    sample = finite if len(finite) <= SAMPLE_SIZE else rng.choice(finite, SAMPLE_SIZE, replace=False)
    return {
        "kind": "numeric",
        "count": int(len(numbers)),
        "missing": int(len(numbers) - len(finite)),
        "min": _float32(finite.min()), "max": _float32(finite.max()),
        "mean": float(f"{finite.mean():.7g}"), "std": float(f"{finite.std():.7g}"),
        "edges": edges,
        "shares": [float(f"{s:.6g}") for s in bin_shares(finite, edges)],
        "sample": [_float32(v) for v in np.sort(sample)],
    }


def _float32(value) -> float:
    """A number as the float32 it is served as, written in the fewest digits (9.3, not
    9.300000190734863): values are binned and compared as float32 on both sides."""
    return float(str(np.float32(value)))


def bin_edges(values: np.ndarray) -> np.ndarray:
    """The interior cut points of BINS quantile bins (fewer where values repeat: a feature
    with three values has at most three bins)."""
    cuts = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
    return np.unique(cuts)


def bin_shares(values: np.ndarray, edges) -> np.ndarray:
    """The share of `values` in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf), in float32
    (what the model is served), so a served 9.3 falls where a training 9.3 fell."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float32), np.asarray(values, dtype=np.float32), side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return counts / max(1, len(values))


def write(folder: Path, profile: dict[str, Any]) -> None:
    """Write the profile into a version folder."""
    (Path(folder) / PROFILE_FILE).write_text(json.dumps(profile, separators=(",", ":")) + "\n", encoding="utf-8")


def read(folder: Path) -> dict[str, Any] | None:
    """A version folder's profile; None for a version exported before profiles were written."""
    path = Path(folder) / PROFILE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
