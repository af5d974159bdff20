"""Recipes: phases as data (the schedule the trainer runs), checked without TensorFlow."""

from __future__ import annotations

import pytest

from zoo.recipe import Phase, Recipe

TRANSFER = Recipe(loss="mse", phases=(Phase(epochs=10), Phase(learning_rate=1e-4, unfreeze=True)))


def test_a_plain_recipe_is_one_phase_over_the_run():
    assert Recipe(loss="mse").schedule(7, frozen=False) == [(7, Phase())]


def test_transfer_phases_split_the_run_where_the_recipe_says():
    assert TRANSFER.schedule(40, frozen=True) == [(10, Phase(epochs=10)), (40, Phase(learning_rate=1e-4, unfreeze=True))]


def test_a_run_shorter_than_the_first_phase_never_reaches_the_second():
    assert TRANSFER.schedule(6, frozen=True) == [(6, Phase(epochs=10))]


def test_with_nothing_frozen_there_is_nothing_to_fine_tune_and_the_first_phase_runs_on():
    # transfer-mlp with pretrained=False (the from-scratch baseline): one phase, one rate
    assert TRANSFER.schedule(40, frozen=False) == [(40, Phase(epochs=10))]


@pytest.mark.parametrize("phases, message", [
    ((), "at least one phase"),
    ((Phase(), Phase(epochs=3)), "only a recipe's last phase"),
    ((Phase(epochs=0),), "at least one epoch"),
    ((Phase(learning_rate=0.1),), "first phase"),
])
def test_malformed_phases_are_refused_when_registered(phases, message):
    with pytest.raises(ValueError, match=message):
        Recipe(loss="mse", phases=phases)


def test_the_default_summary_names_the_plain_recipe():
    assert Recipe(loss="mse", learning_rate=0.01, batch_size=8, patience=3).about == (
        "plain: adam at 0.01, batch 8, early stopping after 3 epochs without a better validation loss")
