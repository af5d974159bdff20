"""The model families. Importing this package registers every factory, one module a family."""

from zoo.architectures import classifiers, regressors, tabular, transfer, wide_deep  # noqa: F401  (registers them)
