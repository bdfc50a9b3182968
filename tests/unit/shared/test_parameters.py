"""The pipeline parameters are defined once and every entry point checks values the same way."""

from __future__ import annotations

import pytest

from yolopipe_shared import parameters as p
from yolopipe_shared.errors import ParameterError


def test_every_parameter_the_architecture_names_is_defined_once() -> None:
    # GIVEN the parameter list of the pipeline's contract (README), less UseSpotInstances (a stack
    # setting: SageMaker refuses MaxWaitTimeInSeconds without spot) plus DatasetVersion (the cache key)
    expected = [
        "DatasetS3Uri", "ModelVariant", "Epochs", "BatchSize", "ImageSize", "LearningRate",
        "TrainingInstanceType", "TrainingInstanceCount", "MaxRuntimeSeconds",
        "DatasetVersion", "DatasetName", "MinMap50_95", "MinImprovement", "Weights",
        "UltralyticsSettings", "ModelPackageGroupName", "MlflowTrackingUri",
    ]
    # THEN the specs hold exactly those, each once, in that order
    assert [spec.name for spec in p.PARAMETERS] == expected


def test_every_default_passes_its_own_rules() -> None:
    # GIVEN each parameter's default (the empty, required dataset URI aside)
    for spec in p.PARAMETERS:
        if spec.required:
            continue
        # THEN checking it changes nothing: a default never fails its own bounds
        assert spec.coerce(spec.default) == spec.default


def test_cost_aware_defaults() -> None:
    # GIVEN a user who sets nothing
    values = p.defaults()
    # THEN they get the nano model on one small GPU instance
    assert values["ModelVariant"] == "n"
    assert values["TrainingInstanceCount"] == 1
    assert values["TrainingInstanceType"].startswith("ml.g")


@pytest.mark.parametrize("key", ["Epochs", "epochs", "--epochs", "EPOCHS"])
def test_any_spelling_of_a_name_is_accepted(key: str) -> None:
    # WHEN the CLI, a YAML overrides file or the API spell a name their own way
    # THEN they resolve to the same typed pipeline value
    assert p.resolve({key: "7"}) == {"Epochs": 7}


def test_unknown_name_suggests_the_close_match() -> None:
    with pytest.raises(ParameterError,
                       match=r"unknown parameter or Ultralytics setting 'epoch'; did you mean 'epochs'\?"):
        p.resolve({"epoch": 3})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Epochs": 0}, "Epochs must be at least 1, got 0"),
        ({"Epochs": 2.5}, "Epochs must be an integer"),
        ({"ImageSize": 650}, "ImageSize must be a multiple of 32"),
        ({"ModelVariant": "q"}, "ModelVariant must be one of n, s, m, l, x"),
        ({"DatasetVersion": "v 1"}, "DatasetVersion 'v 1' is not valid"),
        ({"LearningRate": "fast"}, "LearningRate must be a number"),
        ({"TrainingInstanceType": "g4dn.xlarge"}, "TrainingInstanceType 'g4dn.xlarge' is not valid"),
        ({"TrainingInstanceCount": 9}, "TrainingInstanceCount must be at most 8, got 9; YOLO training gains little"),
        ({"MinMap50_95": 1.5}, "MinMap50_95 must be at most 1"),
    ],
)
def test_out_of_bounds_values_are_refused_with_a_one_line_reason(overrides: dict, message: str) -> None:
    with pytest.raises(ParameterError) as caught:
        p.resolve(overrides)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_dataset_cannot_lower_its_own_quality_gate() -> None:
    # GIVEN overrides that come from a file inside the dataset
    # WHEN they try to set the quality gate
    # THEN they are refused, while training knobs are accepted
    with pytest.raises(ParameterError, match="MinMap50_95 cannot be set by a dataset"):
        p.resolve({"MinMap50_95": 0.0}, only_overridable=True)
    with pytest.raises(ParameterError, match="DatasetVersion cannot be set by a dataset"):
        p.resolve({"dataset_version": "old"}, only_overridable=True)
    assert p.resolve({"epochs": 3}, only_overridable=True) == {"Epochs": 3}


def test_the_stack_caps_epochs() -> None:
    with pytest.raises(ParameterError, match="at most 50 on this stack"):
        p.resolve({"epochs": 51}, max_epochs=50)


def test_execution_parameters_round_trip() -> None:
    # GIVEN typed values
    values = {"Epochs": 5, "LearningRate": 0.002, "ModelVariant": "s", "DatasetVersion": "3/L4kq+tJ.x_y"}
    # WHEN they travel as StartPipelineExecution's strings and come back
    items = p.to_execution_parameters(values)
    # THEN SageMaker gets strings and we read back the same values
    assert {"Name": "Epochs", "Value": "5"} in items
    assert all(isinstance(item["Value"], str) for item in items)
    assert p.from_execution_parameters(items) == values
