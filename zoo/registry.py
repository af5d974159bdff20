"""The model registry: `register_model`, `create_model`, `list_models`, `model_info`.

Like timm's: one dict from name to factory plus metadata. A factory takes the `Dataset`
(its feature names and training split, for the preprocessing layers inside the model) and
keyword-only hyperparameters with defaults, and returns an *uncompiled* `keras.Model` whose
inputs are named after the features and whose outputs are a dict of named tensors.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

from zoo.errors import ConfigError
from zoo.recipe import Recipe

# The signature outputs an exported model has, by task (see zoo.repository.export).
TASK_OUTPUTS = {
    "regression": ("prediction",),
    "multiclass": ("probabilities", "class_id", "label"),
    "binary": ("probability", "class_id", "label"),
}
TASK_METRICS = {"regression": ("mae", "mse"), "multiclass": ("accuracy",), "binary": ("accuracy",)}
# The metric that decides "better": lower is better for the first, higher for the others.
PRIMARY_METRIC = {"regression": "mae", "multiclass": "accuracy", "binary": "accuracy"}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A registered factory: what it builds, and the recipe the trainer trains it with."""

    name: str
    factory: Callable[..., Any]
    task: str
    dataset: str
    description: str
    hyperparameters: dict[str, Any]
    recipe: Recipe
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    also_runs_on: tuple[str, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the trainer compiles and reports, by task."""
        return TASK_METRICS[self.task]

    @property
    def outputs(self) -> tuple[str, ...]:
        """The exported signature's outputs."""
        if self.recipe.loss_weights:  # several Keras outputs: each is served under its own name
            return tuple(self.recipe.loss_weights)
        return TASK_OUTPUTS[self.task]

    @property
    def primary_metric(self) -> str:
        """The metric that decides "better"; for several outputs, the first output's."""
        metric = PRIMARY_METRIC[self.task]
        return f"{next(iter(self.recipe.loss_weights))}_{metric}" if self.recipe.loss_weights else metric

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view, for `zoo info` and model cards."""
        return {
            "name": self.name,
            "task": self.task,
            "dataset": self.dataset,
            "description": self.description,
            "hyperparameters": {k: _jsonable(v) for k, v in self.hyperparameters.items()},
            "dataset_options": self.dataset_options,
            "also_runs_on": list(self.also_runs_on),
            "metrics": list(self.metrics),
            "outputs": list(self.outputs),
            "primary_metric": self.primary_metric,
            "recipe": self.recipe.describe(),
        }


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    *,
    task: str,
    dataset: str,
    recipe: Recipe,
    name: str | None = None,
    dataset_options: dict[str, Any] | None = None,
    also_runs_on: tuple[str, ...] = (),
):
    """Register a factory. Its name is `name`, or the function's name with "-" for "_".

    The factory's docstring's first line is its description; its keyword-only parameters
    (with their defaults) are its hyperparameters.

    Args:
        task: "regression", "multiclass" or "binary".
        dataset: the dataset it trains on by default.
        recipe: how the trainer trains it (see `zoo.recipe`).
        dataset_options: options for `load_dataset` on the default dataset (e.g. classes).
        also_runs_on: other datasets it is built for (tests fall back to them offline).
    """
    if task not in TASK_OUTPUTS:
        raise ValueError(f"task must be one of {tuple(TASK_OUTPUTS)}, got {task!r}")

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        model_name = name or factory.__name__.replace("_", "-")
        if model_name in _MODELS:
            raise ValueError(f"model '{model_name}' is already registered")
        parameters = inspect.signature(factory).parameters.values()
        hyperparameters = {
            p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        _MODELS[model_name] = ModelInfo(
            name=model_name,
            factory=factory,
            task=task,
            dataset=dataset,
            description=(inspect.getdoc(factory) or "").split("\n")[0],
            hyperparameters=hyperparameters,
            recipe=recipe,
            dataset_options=dict(dataset_options or {}),
            also_runs_on=tuple(also_runs_on),
        )
        return factory

    return decorator


def _registered() -> dict[str, ModelInfo]:
    # Importing the architectures registers every family; deferred so that importing the
    # registry alone stays cheap and free of TensorFlow.
    import zoo.architectures  # noqa: F401

    return _MODELS


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch pattern, sorted."""
    return sorted(name for name in _registered() if fnmatch.fnmatch(name, pattern))


def model_info(name: str) -> ModelInfo:
    """The metadata of a registered model.

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    models = _registered()
    if name not in models:
        raise UnknownModelError(name, sorted(models))
    return models[name]


class UnknownModelError(KeyError):
    """An unknown model name; a `KeyError` whose message lists the known names."""

    def __init__(self, name: str, known: list[str]):
        super().__init__(name)
        self.message = f"unknown model '{name}'; known models: {', '.join(known)}"

    def __str__(self) -> str:
        return self.message


def create_model(name: str, data=None, **overrides: Any):
    """Build a registered model, uncompiled.

    Args:
        name: a name from `list_models()`.
        data: the `zoo.datasets.Dataset` whose features the model takes and whose training
            split adapts its preprocessing; default: the model's default dataset, loaded.
        **overrides: hyperparameters that replace the factory's defaults.

    Raises:
        KeyError: unknown model name (the message lists the known names).
        ConfigError: an unknown hyperparameter, or data of another task.
    """
    info = model_info(name)
    unknown = sorted(set(overrides) - set(info.hyperparameters))
    if unknown:
        raise ConfigError(
            f"model '{name}' has no hyperparameter(s) {', '.join(unknown)}; "
            f"its hyperparameters are: {', '.join(info.hyperparameters) or 'none'}"
        )
    if data is None:
        from zoo.datasets import load_dataset

        data = load_dataset(info.dataset, task=info.task, **info.dataset_options)
    if data.task != info.task:
        raise ConfigError(
            f"model '{name}' is a {info.task} model, but dataset '{data.name}' was loaded "
            f"for {data.task}"
        )
    return info.factory(data, **overrides)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else repr(value)
