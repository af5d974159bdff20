"""Model cards: what a version is, how it was made and how it scored, as JSON and Markdown.

The JSON card is the machine-readable record (`zoo evaluate` reloads the dataset and split
from it; retraining reads the config from it); the Markdown card is for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.errors import ExportError

JSON_FILE = "model_card.json"
MARKDOWN_FILE = "model_card.md"


def write(folder: Path, card: dict[str, Any]) -> None:
    """Write the card as model_card.json and model_card.md into a version folder."""
    (folder / JSON_FILE).write_text(json.dumps(card, indent=2, default=_plain) + "\n", encoding="utf-8")
    (folder / MARKDOWN_FILE).write_text(to_markdown(card), encoding="utf-8")


def read(folder: Path) -> dict[str, Any]:
    """A version folder's model card."""
    try:
        return json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{folder} has no {JSON_FILE}; was it exported by the zoo?") from None
    except json.JSONDecodeError as error:
        raise ExportError(f"{folder / JSON_FILE} is not valid JSON: {error}") from None


def to_markdown(card: dict[str, Any]) -> str:
    """The card as a page a person reads."""
    dataset = card.get("dataset", {})
    split = dataset.get("split", {})
    lines = [
        f"# {card.get('name')} v{card.get('version')}",
        "",
        card.get("description", ""),
        "",
        f"- task: {card.get('task')}",
        f"- created: {card.get('created')}",
        f"- dataset: {dataset.get('name')} ({dataset.get('source')}), target `{dataset.get('target')}`",
        f"- split: seed {split.get('seed')}, rows {split.get('rows')}",
        f"- trained with: TensorFlow {card.get('tensorflow')}, Keras {card.get('keras')}",
        "",
        "## Metrics",
        "",
        "| split | metric | value |",
        "|---|---|---|",
    ]
    for split_name, values in card.get("metrics", {}).items():
        if isinstance(values, dict):
            lines += [f"| {split_name} | {key} | {value:.6g} |" for key, value in values.items()
                      if isinstance(value, (int, float))]
    signature = card.get("signature", {})
    lines += ["", f"## Signature `{signature.get('name')}`", "", "| | name | dtype | shape |", "|---|---|---|---|"]
    for kind in ("inputs", "outputs"):
        for key, spec in signature.get(kind, {}).items():
            lines.append(f"| {kind[:-1]} | `{key}` | {spec['dtype']} | {spec['shape']} |")
    lines += ["", "## Hyperparameters", ""]
    lines += [f"- {key}: {value}" for key, value in card.get("hyperparameters", {}).items()]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    # numpy scalars and paths in the card become plain JSON.
    if hasattr(value, "item"):
        return value.item()
    return str(value)
