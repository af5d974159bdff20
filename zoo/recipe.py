"""How a registered model is trained, apart from what it is: `Recipe` and its `Phase`s.

The registry's `ModelInfo` says what a factory builds (task, dataset, hyperparameters,
outputs); its `Recipe` says how the shared trainer trains it (optimizer, learning rate, loss
and loss weights, epochs, batch size, patience, and the phases). Like keras-hub's compile
defaults on a Task and timm's pretrained configs kept apart from its entrypoints. A
`TrainConfig` overrides a recipe's single values per run; phases are the recipe's own.

Transfer learning is two phases as data, not a branch on a layer's name: the factory builds
the reused layers frozen (the Keras guide's `base.trainable = False`), the first phase
trains the new head, and the second `unfreeze`s the whole model and goes on at a lower
learning rate (recompiled, as Keras needs after `trainable` changes).
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Phase:
    """One stretch of a run; the trainer runs a recipe's phases in order, into one history.

    Attributes:
        epochs: how many epochs this phase lasts; None: until the run's last epoch (only the
            last phase may say None).
        learning_rate: this phase's learning rate; None: the run's (`--learning-rate`).
        unfreeze: make every layer trainable when the phase starts (and recompile). A model
            built with nothing frozen skips such a phase's change of learning rate too: it
            has nothing to fine-tune, and trains on in the previous phase.
    """

    epochs: int | None = None
    learning_rate: float | None = None
    unfreeze: bool = False


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The training recipe of a registered model: what `zoo train` does by default.

    Attributes:
        loss: a Keras loss name, applied to each output.
        optimizer: a Keras optimizer name.
        learning_rate: the first phase's learning rate.
        epochs: the most epochs of a run, over all phases.
        batch_size: rows a step.
        patience: epochs without a better validation loss before early stopping.
        loss_weights: output name -> weight, for models with several outputs.
        weight_decay: decoupled weight decay (with optimizer "adamw").
        reduce_lr_patience: divide the learning rate by 3 after this many epochs without a
            better validation loss (Keras's ReduceLROnPlateau).
        label_smoothing: mix each class target with the uniform distribution by this much
            (cross-entropy losses only; 0: none).
        restore_best_weights: end with the weights of the best validation epoch (early
            stopping's choice); False keeps the last epoch's (a problem trained to its minimum).
        phases: the stretches of training, in order; one phase by default.
        members: train this many copies from different initial weights (the same rows,
            the same recipe) and serve their average as one model: a seed ensemble.
        about: where the recipe comes from, in words (`zoo info` shows it); a "plain: ..."
            summary by default.
    """

    loss: str
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 20
    batch_size: int = 32
    patience: int = 5
    loss_weights: dict[str, float] | None = None
    weight_decay: float | None = None
    reduce_lr_patience: int | None = None
    label_smoothing: float = 0.0
    restore_best_weights: bool = True
    phases: tuple[Phase, ...] = (Phase(),)
    members: int = 1
    about: str = ""

    def __post_init__(self):
        if self.members < 1:
            raise ValueError(f"a recipe trains at least one member, got {self.members}")
        if not self.phases:
            raise ValueError("a recipe has at least one phase")
        if any(phase.epochs is None for phase in self.phases[:-1]):
            raise ValueError("only a recipe's last phase may run until the last epoch (epochs=None)")
        if any(phase.epochs is not None and phase.epochs < 1 for phase in self.phases):
            raise ValueError("a phase lasts at least one epoch")
        if self.phases[0].learning_rate is not None or self.phases[0].unfreeze:
            raise ValueError("the first phase trains the model as built, at the recipe's learning_rate")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label smoothing is a share in [0, 1), got {self.label_smoothing}")
        if not self.about:
            object.__setattr__(self, "about", (
                f"plain: {self.optimizer} at {self.learning_rate:g}, batch {self.batch_size}, early "
                f"stopping after {self.patience} epochs without a better validation loss"))

    def schedule(self, epochs: int, *, frozen: bool) -> list[tuple[int, Phase]]:
        """Each phase that starts before `epochs`, with the epoch it ends at (exclusive).

        Args:
            epochs: the run's epochs.
            frozen: whether the built model has frozen layers. Without any, an unfreezing
                phase has nothing to fine-tune (transfer-mlp with `pretrained=False`, the
                from-scratch baseline): the phase before it runs on through its epochs.
        """
        spans: list[tuple[int, Phase]] = []
        start = 0
        for phase in self.phases:
            if start >= epochs:
                break
            end = epochs if phase.epochs is None else min(epochs, start + phase.epochs)
            if phase.unfreeze and not frozen and spans:
                spans[-1] = (end, spans[-1][1])
            else:
                spans.append((end, phase))
            start = end
        return spans

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view."""
        fields = dataclasses.asdict(self)
        fields["phases"] = [dataclasses.asdict(phase) for phase in self.phases]
        return fields
