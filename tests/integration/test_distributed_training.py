"""TrainingInstanceCount=2, run by AWS's own launcher: the rendered Train step on two instances, each a
sagemaker-training toolkit process with its own /opt/ml (container_harness), which starts
`torchrun --nnodes 2 --node_rank R --master_addr 127.0.0.1` as the PyTorch image does; gloo on CPU.
Beside it, the same step on one instance, with the same global batch.

The dataset is one image copied 16 times and augmentation is off, so every batch is copies of one
image whichever rank draws it: what differs between the runs is only how the batch is split.
Needs .venv-toolkit and a private mount namespace, as test_container_contract.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_harness import (
    PYTORCH_TRAINING_MODULE,
    TOOLKIT_VENV,
    Container,
    all_steps,
    download_prefix,
    job_environment,
    run_together,
    split_s3,
    toolkit_test_marks,
    training_hosts,
    upload_folder,
    write_training_config,
)

from pipeline.code_bundle import build_bundle
from pipeline.render import render_definition
from yolopipe.local.expressions import Scope, evaluate
from yolopipe.local.scheduler import resolve_parameters
from yolopipe_shared import parameters

BUCKET = "yolopipe-distributed"
COPIES = 16
GLOBAL_BATCH = 8
MODEL_FILES = {"best.pt", "last.pt", "args.yaml", "results.csv", "metrics.json"}
#: Every image the same and the weights all but fixed (LearningRate 1e-6): augmentation off.
IDENTICAL_BATCHES = {"mosaic": "0", "fliplr": "0", "hsv_h": "0", "hsv_s": "0", "hsv_v": "0", "translate": "0",
                     "scale": "0", "plots": "false", "val": "false", "warmup_epochs": "0", "optimizer": "SGD"}

pytestmark = toolkit_test_marks()


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    from yolopipe.local.emulator import Emulator

    with Emulator() as emulator:
        emulator.client("s3").create_bucket(Bucket=BUCKET)
        yield emulator


def _copies_dataset(folder: Path) -> Path:
    """One generated training image (and its labels) copied COPIES times; two validation images."""
    from yolopipe.datasets.sample import generate_dataset

    dataset = Path(generate_dataset(folder, train=1, val=2, imgsz=64, objects_per_image=(2, 2)).root)
    [image] = (dataset / "images" / "train").iterdir()
    label = dataset / "labels" / "train" / f"{image.stem}.txt"
    for index in range(1, COPIES):
        shutil.copy(image, image.with_name(f"copy{index}{image.suffix}"))
        shutil.copy(label, label.with_name(f"copy{index}.txt"))
    return dataset


@pytest.fixture(scope="module")
def runs(aws: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[dict[str, Any]]]:
    """The Train step with TrainingInstanceCount 2 and 1, run at the same time: per count, each instance's
    container and process."""
    bundle = build_bundle()
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=bundle.key, Body=bundle.data)
    definition = json.loads(render_definition(bucket=BUCKET, role_arn="arn:aws:iam::123456789012:role/yolopipe-sm",
                                              region="us-east-1", code_s3_uri=bundle.s3_uri(BUCKET)))
    dataset_uri = f"s3://{BUCKET}/datasets/copies/"
    upload_folder(s3, _copies_dataset(tmp_path_factory.mktemp("upload") / "dataset"), dataset_uri)
    jobs, instances = [], {}
    for count in (2, 1):
        values = {**parameters.dataset_parameters(dataset_uri, "v1"), "Epochs": 1, "ImageSize": 64,
                  "BatchSize": GLOBAL_BATCH, "LearningRate": 1e-6, "TrainingInstanceCount": count,
                  "Weights": "scratch"}
        scope = Scope(parameters=resolve_parameters(definition, parameters.to_execution_parameters(values)),
                      execution={"PipelineExecutionId": f"dist{count}", "PipelineName": "yolopipe"},
                      read_s3=lambda uri: s3.get_object(Bucket=split_s3(uri)[0], Key=split_s3(uri)[1])["Body"].read())
        arguments = evaluate(all_steps(definition)["Train"]["Arguments"], scope)
        assert arguments["ResourceConfig"]["InstanceCount"] == count
        arguments["HyperParameters"].update(IDENTICAL_BATCHES)
        hosts = training_hosts(count)
        instances[count] = []
        for host in hosts:
            container = Container(tmp_path_factory.mktemp(f"train{count}-{host}"))
            write_training_config(container, arguments, hosts, host)
            for channel in arguments["InputDataConfig"]:  # FullyReplicated: every instance its own copy
                download_prefix(s3, channel["DataSource"]["S3DataSource"]["S3Uri"],
                                container.host(f"/opt/ml/input/data/{channel['ChannelName']}"))
            env = job_environment(aws.environment(), arguments.get("Environment") or {},
                                  SAGEMAKER_TRAINING_MODULE=PYTORCH_TRAINING_MODULE,
                                  TRAINING_JOB_NAME=f"distributed-train-{count}")
            jobs.append((container, [str(TOOLKIT_VENV / "bin" / "train")], env))
            instances[count].append({"container": container})
    for job, process in zip(jobs, run_together(jobs, timeout=600), strict=True):
        next(i for runs in instances.values() for i in runs if i["container"] is job[0])["process"] = process
    return instances


def _epoch_losses(container: Container) -> dict[str, float]:
    metrics = json.loads((container.host("/opt/ml/model") / "metrics.json").read_text())
    [epoch] = metrics["epochs"]
    return {key: epoch[key] for key in ("box_loss", "cls_loss", "dfl_loss")}


def test_two_instances_train_together_and_rank_0_writes_the_model(runs):
    """GIVEN the rendered Train step with TrainingInstanceCount=2
    WHEN AWS's toolkit runs it on both instances (torchrun --nnodes 2, gloo on CPU)
    THEN both ranks train and finish, and only the first instance's /opt/ml/model holds the model:
    what SageMaker ships as model.tar.gz; the other instance's checkpoint dir stays as SageMaker left it."""
    first, second = runs[2]
    for rank, instance in enumerate((first, second)):
        log = instance["process"].stdout
        assert instance["process"].returncode == 0, log[-6000:]
        assert f"--nnodes 2 --nproc_per_node 1 --master_addr 127.0.0.1 --master_port 7777 --node_rank {rank}" in log
        assert f"yolopipe: rank {rank} of 2 instance(s) x 1 process(es) = 2" in log
    assert "done rank 1: rank 0 writes the model dir" in second["process"].stdout
    model_dir = first["container"].host("/opt/ml/model")
    assert {p.name for p in model_dir.iterdir()} >= MODEL_FILES
    assert not any(second["container"].host("/opt/ml/model").iterdir())
    assert not [p for p in second["container"].host("/opt/ml/checkpoints").rglob("*") if p.is_file()]


def test_the_split_batch_gives_the_one_instance_losses(runs):
    """GIVEN the same step on one instance (one process, global batch 8) and on two (4 images per rank)
    WHEN each trains one epoch on copies of one image, from the same seed
    THEN rank 0 starts from the one-process model and sees half the batch: its losses are half the
    one-process losses, within 0.1%.

    Why half: from scratch Ultralytics divides a batch's summed loss by max(assigned target score, 1),
    which is 1 on these tiny untrained batches, so a batch's loss is the sum over its images; each
    rank's 4 copies weigh half the single process's 8. Why 0.1%: the weights barely move (learning rate
    1e-6) and the images are identical, so only float32 summation order differs; a wrong split (8 per
    rank), another initial model or another image pipeline is off by far more."""
    [one] = runs[1]
    assert one["process"].returncode == 0, one["process"].stdout[-6000:]
    assert "--nnodes 1 --nproc_per_node 1" in one["process"].stdout  # the launcher, with one process
    assert runs[2][0]["process"].returncode == 0, runs[2][0]["process"].stdout[-6000:]
    single, rank0 = _epoch_losses(one["container"]), _epoch_losses(runs[2][0]["container"])
    for key, value in single.items():
        assert rank0[key] * 2 == pytest.approx(value, rel=1e-3), (key, rank0, single)
