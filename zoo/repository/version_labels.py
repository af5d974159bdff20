"""Version labels, promotion, rollback and retention for the versions of one model.

Labels live in models/models.config (`version_labels`), where both TF Serving (polling the
file with --model_config_file_poll_wait_seconds) and `zoo serve` read them, so moving
`stable` from one version to another needs no restart and no client change.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from zoo import repository
from zoo.errors import ExportError
from zoo.repository import model_card

STABLE, CANARY = "stable", "canary"


@dataclasses.dataclass(frozen=True)
class VersionRow:
    """One line of `zoo versions`."""
    version: int
    created: str
    dataset: str
    metric: str
    value: float | None
    labels: tuple[str, ...]
    served: bool


def labels(models_dir: Path, name: str) -> dict[str, int]:
    """A model's version labels (stable, canary, ...) from models.config."""
    for entry in repository.read_serving_config(models_dir).model_config_list.config:
        if entry.name == name:
            return dict(entry.version_labels)
    return {}


def served_versions(models_dir: Path, name: str) -> set[int]:
    """The versions a server loads for this model under its config's version policy."""
    found = repository.versions(models_dir / name)
    for entry in repository.read_serving_config(models_dir).model_config_list.config:
        if entry.name == name:
            return repository.policy_versions(entry, found)
    return set(found[-1:])  # not in the config yet: TF Serving's default, the newest


def promote(models_dir: Path, name: str, version: int, label: str = STABLE) -> None:
    """Point `label` at `version` (which must exist) in models.config."""
    repository.version_dir(models_dir, name, version)  # raises if there is no such version

    def edit(entries):
        if name not in entries:
            raise ExportError(f"model '{name}' is not in {models_dir / repository.SERVING_CONFIG}")
        entries[name].version_labels[label] = version

    repository.write_serving_config(models_dir, edit=edit)


def rollback(models_dir: Path, name: str, label: str = STABLE) -> tuple[int, int]:
    """Move `label` to the version before the one it points at; returns (from, to)."""
    current = labels(models_dir, name).get(label)
    if current is None:
        raise ExportError(f"model '{name}' has no '{label}' label to roll back; promote a version first")
    earlier = [v for v in repository.versions(models_dir / name) if v < current]
    if not earlier:
        raise ExportError(f"model '{name}': '{label}' is at version {current}, the oldest there is")
    promote(models_dir, name, earlier[-1], label)
    return current, earlier[-1]


def version_rows(models_dir: Path, name: str) -> list[VersionRow]:
    """A row per version, newest first: what `zoo versions` prints."""
    found = repository.versions(models_dir / name)
    if not found:
        raise ExportError(f"model '{name}' has no exported version under {models_dir / name}")
    by_version: dict[int, list[str]] = {}
    for label, version in labels(models_dir, name).items():
        by_version.setdefault(version, []).append(label)
    served = served_versions(models_dir, name)
    rows = []
    for version in reversed(found):
        try:
            card = model_card.read(repository.version_dir(models_dir, name, version))
        except ExportError:
            card = {}
        metrics = card.get("metrics", {})
        metric = metrics.get("primary_metric", "")
        rows.append(VersionRow(
            version=version, created=card.get("created", "?"),
            dataset=card.get("dataset", {}).get("name", "?"), metric=metric,
            value=metrics.get("test", {}).get(metric), labels=tuple(sorted(by_version.get(version, []))),
            served=version in served,
        ))
    return rows


def prune(models_dir: Path, name: str, keep: int) -> list[int]:
    """Delete all but the newest `keep` versions, never a labelled or a served one."""
    if keep < 1:
        raise ExportError(f"--keep must be at least 1, got {keep}")
    found = repository.versions(models_dir / name)
    protected = set(labels(models_dir, name).values()) | served_versions(models_dir, name)
    removable = [v for v in found[:-keep] if v not in protected]
    for version in removable:
        # Renamed out of the integer namespace first, so a polling server never sees half a folder.
        doomed = models_dir / name / f".removing-{version}"
        repository.version_dir(models_dir, name, version).rename(doomed)
        shutil.rmtree(doomed)
    if removable:
        repository.write_serving_config(models_dir)
    return removable
