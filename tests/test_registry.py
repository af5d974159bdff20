"""The registry: names, patterns, metadata and the errors for unknown names."""

from __future__ import annotations

import pytest

from zoo.errors import ConfigError
from zoo.registry import create_model, list_models, model_info


def test_the_foundation_models_are_registered():
    assert {"linear-unit", "dnn-regressor", "digits-mlp"} <= set(list_models())


def test_list_models_takes_fnmatch_patterns():
    assert list_models("d*") == ["digits-mlp", "digits-mlp-ensemble", "dnn-regressor"]
    assert list_models("*-unit") == ["linear-unit"]
    assert list_models("nothing-*") == []


def test_an_unknown_name_is_a_key_error_listing_the_known_names():
    with pytest.raises(KeyError) as error:
        create_model("resnet-9000")
    assert "unknown model 'resnet-9000'" in str(error.value)
    for name in list_models():
        assert name in str(error.value)


@pytest.mark.parametrize("name", list_models())
def test_metadata_is_complete(name):
    info = model_info(name)
    assert info.task in ("regression", "multiclass", "binary")
    assert info.dataset and info.recipe.loss and info.recipe.optimizer and info.recipe.learning_rate > 0
    assert info.description and not info.description.startswith(" ")
    assert all(not key.startswith("_") for key in info.hyperparameters)
    described = info.describe()
    assert described["name"] == name and "factory" not in described


def test_dnn_regressor_defaults_follow_the_course():
    info = model_info("dnn-regressor")
    assert info.hyperparameters["units"] == 512 and info.hyperparameters["depth"] == 3
    assert info.hyperparameters["activation"] == "relu"
    assert (info.recipe.loss, info.recipe.optimizer, info.dataset) == ("mae", "adam", "red-wine")


def test_unknown_hyperparameters_are_rejected_by_name(load):
    with pytest.raises(ConfigError, match="no hyperparameter.*colour.*units, depth"):
        create_model("dnn-regressor", load("red-wine"), colour="red")


def test_a_model_refuses_data_loaded_for_another_task(load):
    with pytest.raises(ConfigError, match="is a regression model, but dataset 'digits'"):
        create_model("dnn-regressor", load("digits"))


def test_a_model_names_features_the_dataset_lacks(load):
    with pytest.raises(ConfigError, match="has no feature.*sugars.*its features are: fixed_acidity"):
        create_model("linear-unit", load("red-wine"))


def test_every_model_says_which_recipe_it_trains_with():
    for name in list_models():
        recipe = model_info(name).recipe.about
        assert recipe.split(":")[0] in ("plain", "least squares", "strong tabular recipe"), (name, recipe)
