"""The model families. Importing this package registers every factory, one module a family."""

from zoo.architectures import classifiers, regressors  # noqa: F401  (registers the factories)
