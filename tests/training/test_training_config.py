"""Hyperparameters: SageMaker passes them as arguments and as SM_HPS; both must mean the same run."""

from __future__ import annotations

import json

import pytest
from fast_defaults import Gpu, Machine
from yolo_offline import prepare_environment

from yolopipe_shared.errors import ParameterError

H100 = Machine(cpus=16, ram_available_gib=120.0, gpus=(Gpu("NVIDIA H100 80GB HBM3", 79.2),))


@pytest.fixture(scope="module")
def train_module():
    prepare_environment()
    import train

    return train


#: These tests are about settings: the model starts from its architecture (nothing downloaded).
SCRATCH = ("--weights", "scratch")


@pytest.fixture
def dataset(sample_dataset):
    return sample_dataset(train=4, val=2).root


def test_arguments_and_sm_hps_resolve_to_the_same_run(train_module, dataset):
    """GIVEN the same hyperparameters as `--name value` arguments and as SM_HPS JSON (typed values)
    WHEN each is resolved
    THEN the resolved configurations are identical."""
    env = {"SM_CHANNEL_DATASET": str(dataset), "SM_MODEL_DIR": "/tmp/m"}
    argv = ["--variant", "s", "--epochs", "7", "--batch", "32", "--imgsz", "320", "--lr0", "0.02",
            "--patience", "5", "--seed", "3", "--cache", "False", "--close-mosaic", "2", "--fliplr", "0.25",
            "--weights", "scratch"]
    hps = {"variant": "s", "epochs": 7, "batch": "32", "imgsz": 320, "lr0": 0.02, "patience": "5", "seed": 3,
           "cache": False, "close_mosaic": 2, "fliplr": "0.25",
           "weights": "scratch"}

    from_argv = train_module.resolve_config(argv, env, machine=H100)
    from_hps = train_module.resolve_config([], {**env, "SM_HPS": json.dumps(hps)}, machine=H100)

    assert from_argv == from_hps
    assert from_argv.variant == "s"
    assert from_argv.train_args["epochs"] == 7 and from_argv.train_args["lr0"] == 0.02
    assert from_argv.train_args["optimizer"] == "SGD", "a learning rate asked for must not be ignored"


def test_arguments_win_over_sm_hps(train_module, dataset):
    """GIVEN SM_HPS says 5 epochs and the command line says 9
    WHEN resolved
    THEN the run trains 9 epochs."""
    env = {"SM_CHANNEL_DATASET": str(dataset), "SM_HPS": json.dumps({"epochs": 5, "sagemaker_program": "train.py"})}
    config = train_module.resolve_config(["--epochs", "9", *SCRATCH], env, machine=H100)
    assert config.train_args["epochs"] == 9


def test_fast_defaults_fill_what_the_user_left_unset(train_module, dataset):
    """GIVEN an H100 machine and no batch/workers/cache/device set (or batch -1, the pipeline default)
    WHEN resolved
    THEN the machine's fast values are used; what the user set is kept."""
    env = {"SM_CHANNEL_DATASET": str(dataset)}
    auto = train_module.resolve_config(["--batch", "-1", *SCRATCH], env, machine=H100)
    assert auto.train_args["workers"] == 16 and auto.train_args["cache"] == "ram"
    assert auto.train_args["device"] == "0"
    assert auto.train_args["batch"] == 16, "4 images: small data keeps enough optimizer steps"
    kept = train_module.resolve_config(["--batch", "24", "--workers", "3", "--cache", "false", *SCRATCH], env,
                                       machine=H100)
    assert (kept.train_args["batch"], kept.train_args["workers"], kept.train_args["cache"]) == (24, 3, False)


def test_multi_gpu_uses_every_gpu_with_an_even_batch(train_module, dataset):
    """GIVEN a 4-GPU instance and a batch of 30
    WHEN resolved
    THEN training runs on devices 0-3 (Ultralytics DDP) with a batch divisible by 4."""
    four = Machine(cpus=48, ram_available_gib=180.0, gpus=tuple(Gpu("NVIDIA A10G", 22.0) for _ in range(4)))
    config = train_module.resolve_config(["--batch", "30", *SCRATCH], {"SM_CHANNEL_DATASET": str(dataset)},
                                         machine=four)
    assert config.train_args["device"] == "0,1,2,3"
    assert config.train_args["batch"] == 28
    assert config.train_args["workers"] == 12


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--epoch", "3"], "did you mean 'epochs'"),
        (["--learning-rte", "0.1"], "unknown hyperparameter 'learning_rte'"),
        (["--data", "/etc/x.yaml"], "cannot be set"),
        (["--resume", "true"], "resumed automatically"),
        (["--variant", "q"], "variant must be one of"),
        (["--epochs", "many"], "epochs"),
        (["--integrations", "mlflow,myspace"], "unknown integration 'myspace'"),
        (["stray"], "unexpected argument"),
    ],
)
def test_bad_hyperparameters_are_refused_with_a_fix(train_module, dataset, argv, expected):
    """GIVEN a misspelt, reserved or badly typed hyperparameter
    WHEN resolved
    THEN a one-line ParameterError says what is wrong (and the close match when there is one)."""
    with pytest.raises(ParameterError) as err:
        train_module.resolve_config(argv, {"SM_CHANNEL_DATASET": str(dataset)}, machine=H100)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_no_dataset_channel_is_a_clear_error(train_module, capsys):
    """GIVEN no dataset channel and no --dataset
    WHEN main() runs
    THEN it returns 2 and prints one line naming SM_CHANNEL_DATASET."""
    import os

    saved = os.environ.pop("SM_CHANNEL_DATASET", None)
    try:
        assert train_module.main(["--epochs", "1"]) == 2
    finally:
        if saved is not None:
            os.environ["SM_CHANNEL_DATASET"] = saved
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SM_CHANNEL_DATASET" in err


def test_integrations_stay_off_unless_asked(train_module):
    """GIVEN MLflow/Comet/ClearML... callbacks that Ultralytics switches on whenever their packages exist
    WHEN the training job configures Ultralytics, without and then with `--integrations mlflow`
    THEN every integration and the event sync are off, and only the one asked for comes on."""
    from ultralytics import settings
    from yolo_offline import INTEGRATIONS, configure_settings

    configure_settings([])
    assert settings["sync"] is False
    assert not any(settings[name] for name in INTEGRATIONS)
    configure_settings(["mlflow"])
    assert settings["mlflow"] is True and not settings["comet"]
    configure_settings([])
