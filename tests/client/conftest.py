"""The client tests run against the serving tests' embedded server and model repository."""

from tests.serving.conftest import channel, repository, server  # noqa: F401  (shared fixtures)
