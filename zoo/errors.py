"""Exceptions the zoo raises for problems a user can fix.

The CLI turns any `ZooError` into one line on stderr and a non-zero exit, so the
message must name the thing that is wrong and what was expected.
"""


class ZooError(Exception):
    """Base class: an error with a message meant for the user, not a traceback."""


class DatasetError(ZooError):
    """A dataset cannot be found, downloaded, verified or parsed."""


class ConfigError(ZooError):
    """A training or export configuration value is invalid."""


class ExportError(ZooError):
    """A model cannot be exported or a model version cannot be found."""


class TrainingError(ZooError):
    """A run produced a model that must not be published (a loss or metric not finite)."""
