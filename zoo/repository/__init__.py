"""The model repository: what TensorFlow Serving reads, and how the zoo writes it.

    layout.py          the folders and models.config, version numbers, atomic publishing
    export.py          a trained Keras model -> a SavedModel version with raw-feature signatures
    model_card.py      the card beside each version (data, split, metrics, signature)
    version_labels.py  labels (stable, canary), promote, rollback, prune

The layout's functions are this package's own names (`repository.version_dir(...)`), as
they were when the repository was one module.
"""

from zoo.repository.layout import (
    DEFAULT_SERVING_ROOT,
    SERVING_CONFIG,
    UMASK,
    atomic_write_text,
    latest_version,
    parse_version,
    policy_versions,
    publish_version,
    read_serving_config,
    remove_abandoned,
    version_dir,
    version_folders,
    versions,
    write_serving_config,
)

__all__ = [
    "DEFAULT_SERVING_ROOT", "SERVING_CONFIG", "UMASK", "atomic_write_text", "latest_version", "parse_version",
    "policy_versions", "publish_version", "read_serving_config", "remove_abandoned", "version_dir",
    "version_folders", "versions", "write_serving_config",
]
