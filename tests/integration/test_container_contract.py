"""The container contract, run by AWS's own code: the rendered Train step through the
sagemaker-training toolkit (as the PyTorch training image runs it), the rendered Evaluate step's
ContainerEntrypoint verbatim, and CheckQuality's JsonGet on what Evaluate wrote.

Then the model package's serving: the trained model.tar.gz unpacked at /opt/ml/model and answered
by the PyTorch inference image's own serving code (sagemaker-pytorch-inference's HandlerService
loaded by TorchServe's model loader, serving_driver.py), which runs our code/inference.py.

Needs .venv-toolkit (`make integration` creates it) and a private mount namespace (`unshare`);
see container_harness.py. About a minute on two cores.
"""

from __future__ import annotations

import base64
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from container_harness import (
    PYTORCH_TRAINING_MODULE,
    TOOLKIT_VENV,
    Container,
    all_steps,
    download_prefix,
    job_environment,
    split_s3,
    toolkit_test_marks,
    upload_folder,
    upload_model,
    write_training_config,
)

from pipeline.code_bundle import build_bundle
from pipeline.render import render_definition
from yolopipe.local.expressions import PropertyFileRef, Scope, condition, evaluate
from yolopipe.local.scheduler import resolve_parameters
from yolopipe_shared import parameters

BUCKET = "yolopipe-contract"
DATASET = "shapes & co (2026)"
EXECUTION = {"PipelineExecutionId": "contract0test", "PipelineName": "yolopipe"}
MODEL_FILES = {"best.pt", "last.pt", "args.yaml", "results.csv", "metrics.json"}

pytestmark = toolkit_test_marks()


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """The emulator (moto on 127.0.0.1) holding the bucket and the code tarball, as after a deploy."""
    from yolopipe.local.emulator import Emulator

    with Emulator() as emulator:
        emulator.client("s3").create_bucket(Bucket=BUCKET)
        yield emulator


@pytest.fixture(scope="module")
def execution(aws: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One execution of the deployed definition on a tiny generated dataset: its steps and scope."""
    from yolopipe.datasets.sample import generate_dataset

    bundle = build_bundle()
    s3 = aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key=bundle.key, Body=bundle.data)
    definition = json.loads(render_definition(bucket=BUCKET, role_arn="arn:aws:iam::123456789012:role/yolopipe-sm",
                                              region="us-east-1", code_s3_uri=bundle.s3_uri(BUCKET)))
    dataset_uri = f"s3://{BUCKET}/datasets/{DATASET}/"
    dataset = generate_dataset(tmp_path_factory.mktemp("upload") / "dataset", train=8, val=4, imgsz=64)
    upload_folder(s3, Path(dataset.root), dataset_uri)
    # Offline: from scratch; one Ultralytics setting through the UltralyticsSettings JSON hyperparameter.
    values = {**parameters.dataset_parameters(dataset_uri, "v1"), "Epochs": 1, "ImageSize": 32, "BatchSize": 4,
              **parameters.resolve({"Weights": "scratch", "patience": 7, "optimizer": "AdamW"})}
    scope = Scope(parameters=resolve_parameters(definition, parameters.to_execution_parameters(values)),
                  execution=EXECUTION, read_s3=lambda uri: s3.get_object(Bucket=split_s3(uri)[0],
                                                                         Key=split_s3(uri)[1])["Body"].read())
    return {"steps": all_steps(definition), "scope": scope, "dataset": Path(dataset.root)}


@pytest.fixture(scope="module")
def trained(aws: Any, execution: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Train step run by the sagemaker-training toolkit: its container and its log."""
    arguments = evaluate(execution["steps"]["Train"]["Arguments"], execution["scope"])
    container = Container(tmp_path_factory.mktemp("train"))
    write_training_config(container, arguments)
    for channel in arguments["InputDataConfig"]:
        download_prefix(aws.client("s3"), channel["DataSource"]["S3DataSource"]["S3Uri"],
                        container.host(f"/opt/ml/input/data/{channel['ChannelName']}"))
    env = job_environment(aws.environment(), arguments.get("Environment") or {},
                          SAGEMAKER_TRAINING_MODULE=PYTORCH_TRAINING_MODULE, TRAINING_JOB_NAME="contract-train")
    process = container.run([str(TOOLKIT_VENV / "bin" / "train")], env, timeout=600)
    return {"arguments": arguments, "container": container, "process": process}


def test_toolkit_trains_from_the_code_tarball_with_the_step_hyperparameters(trained):
    """GIVEN the rendered Train step, resolved for Epochs=1, ImageSize=32, and its code tarball in S3
    WHEN AWS's training toolkit runs it as the PyTorch image does
    THEN it downloads and unpacks the tarball, installs requirements.txt without downloading anything,
    runs train.py with the hyperparameters, and /opt/ml/model holds what the pipeline ships."""
    process, container = trained["process"], trained["container"]
    log = process.stdout
    assert process.returncode == 0, log[-6000:]
    assert "Installing dependencies from requirements.txt" in log
    assert container.host("/opt/ml/output/success").is_file()
    model_dir = container.host("/opt/ml/model")
    assert {p.name for p in model_dir.iterdir()} >= MODEL_FILES, sorted(p.name for p in model_dir.iterdir())
    train_args = yaml.safe_load((model_dir / "args.yaml").read_text())
    assert (train_args["epochs"], train_args["imgsz"], train_args["batch"]) == (1, 32, 4)
    assert (train_args["patience"], train_args["optimizer"]) == (7, "AdamW"), "the settings JSON survives the toolkit"
    assert json.loads((model_dir / "metrics.json").read_text())


def test_checkpoints_land_where_the_step_tells_sagemaker_to_sync_them(trained):
    """GIVEN the Train step's CheckpointConfig WHEN training saves a checkpoint THEN it is under the
    LocalPath SageMaker syncs to S3 (what a spot interruption resumes from)."""
    local = trained["arguments"]["CheckpointConfig"]["LocalPath"]
    saved = [p for p in trained["container"].host(local).rglob("*.pt")]
    assert saved, trained["process"].stdout[-3000:]


@pytest.fixture(scope="module")
def evaluated(aws: Any, execution: dict[str, Any], trained: dict[str, Any],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Evaluate step's ContainerEntrypoint + ContainerArguments, run as written."""
    assert trained["process"].returncode == 0, trained["process"].stdout[-3000:]
    s3, scope = aws.client("s3"), execution["scope"]
    output_path = trained["arguments"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    artifact = f"{output_path}/contract-train/output/model.tar.gz"
    upload_model(s3, trained["container"].host("/opt/ml/model"), artifact, tmp_path_factory.mktemp("artifact"))
    scope.steps["Train"] = {**trained["arguments"], "ModelArtifacts": {"S3ModelArtifacts": artifact}}

    step = execution["steps"]["Evaluate"]
    arguments = evaluate(step["Arguments"], scope)
    container = Container(tmp_path_factory.mktemp("evaluate"))
    inputs = {item["InputName"]: download_prefix(s3, item["S3Input"]["S3Uri"],
                                                 container.host(item["S3Input"]["LocalPath"]))
              for item in arguments["ProcessingInputs"]}
    outputs = arguments["ProcessingOutputConfig"]["Outputs"]
    for item in outputs:
        container.host(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    app = arguments["AppSpecification"]
    env = job_environment(aws.environment(), arguments.get("Environment") or {})
    process = container.run([*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])], env, timeout=600)
    for item in outputs:  # S3UploadMode EndOfJob
        upload_folder(s3, container.host(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
    scope.steps["Evaluate"] = arguments
    for spec in step.get("PropertyFiles", []):
        scope.property_files[("Evaluate", spec["PropertyFileName"])] = PropertyFileRef(
            "Evaluate", spec["PropertyFileName"], spec["OutputName"], spec["FilePath"])
    return {"arguments": arguments, "container": container, "process": process, "inputs": inputs}


def test_evaluation_job_runs_its_entrypoint_verbatim_and_writes_the_report(evaluated, execution):
    """GIVEN the trained model.tar.gz, the dataset and the code tarball at the Evaluate step's LocalPaths
    WHEN its ContainerEntrypoint + ContainerArguments run as written
    THEN evaluation.json appears at the ProcessingOutput's LocalPath, and CheckQuality's JsonGet path
    reads a number from it that the quality gate compares."""
    process, container = evaluated["process"], evaluated["container"]
    assert process.returncode == 0, process.stdout[-6000:]
    assert [name.endswith(".tar.gz") for name in evaluated["inputs"]["code"]] == [True]
    property_file = execution["steps"]["Evaluate"]["PropertyFiles"][0]
    [output] = [o for o in evaluated["arguments"]["ProcessingOutputConfig"]["Outputs"]
                if o["OutputName"] == property_file["OutputName"]]
    report = container.host(output["S3Output"]["LocalPath"]) / property_file["FilePath"]
    assert report.is_file(), process.stdout[-3000:]
    assert json.loads(report.read_text())["split"] == "val"

    # AND both of CheckQuality's JsonGet paths resolve to numbers the gate compares: the candidate's
    # mAP50-95 with MinMap50_95, and its improvement over the approved model with MinImprovement
    gate, improvement_gate = execution["steps"]["CheckQuality"]["Arguments"]["Conditions"]
    metric = evaluate(gate["LeftValue"], execution["scope"])
    assert isinstance(metric, float) and 0.0 <= metric <= 1.0
    assert condition(gate, execution["scope"]) is (metric >= execution["scope"].parameters["MinMap50_95"])
    improvement = evaluate(improvement_gate["LeftValue"], execution["scope"])
    assert isinstance(improvement, float) and -1.0 <= improvement <= 1.0
    assert condition(improvement_gate, execution["scope"]) is (
        improvement >= execution["scope"].parameters["MinImprovement"])


@pytest.fixture(scope="module")
def served_model(aws: Any, execution: dict[str, Any], trained: dict[str, Any],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The trained model.tar.gz unpacked at /opt/ml/model of an inference container, and the answers of
    the image's serving toolkit to real requests (serving_driver.py)."""
    from PIL import Image

    assert trained["process"].returncode == 0, trained["process"].stdout[-3000:]
    s3 = aws.client("s3")
    artifact = f"s3://{BUCKET}/artifacts/models/contract-train/output/model.tar.gz"
    upload_model(s3, trained["container"].host("/opt/ml/model"), artifact, tmp_path_factory.mktemp("package"))
    container = Container(tmp_path_factory.mktemp("inference"))
    archive = container.root / "model.tar.gz"
    s3.download_file(*split_s3(artifact), str(archive))
    with tarfile.open(archive) as tar:  # what SageMaker does with ModelDataUrl before the server starts
        tar.extractall(container.host("/opt/ml/model"), filter="data")

    jpeg = sorted((execution["dataset"] / "images" / "val").glob("*.jpg"))[0]
    png = container.root / "image.png"
    Image.open(jpeg).save(png)
    s3.upload_file(str(jpeg), BUCKET, "requests/one.jpg")
    bomb = container.root / "bomb.png"  # 49 megapixels of one bit: a few kB on the wire
    Image.new("1", (7000, 7000)).save(bomb)
    bodies = {
        "jpeg": jpeg.read_bytes(),
        "png": png.read_bytes(),
        "json": json.dumps([f"s3://{BUCKET}/requests/one.jpg", base64.b64encode(png.read_bytes()).decode()]).encode(),
        "too_many": json.dumps([base64.b64encode(png.read_bytes()).decode()] * 17).encode(),
        "bomb": bomb.read_bytes(),
    }
    types = {"jpeg": "image/jpeg", "png": "image/png", "json": "application/json", "too_many": "application/json",
             "bomb": "image/png"}
    requests = []
    for name, body in bodies.items():
        (container.root / f"{name}.body").write_bytes(body)
        requests.append({"content_type": types[name], "accept": "application/json",
                         "body_file": str(container.root / f"{name}.body")})
    (container.root / "requests.json").write_text(json.dumps(requests))
    # A low threshold, so that a one-epoch model's boxes come back too (the endpoint's default is 0.25).
    env = job_environment(aws.environment(), {"YOLOPIPE_CONFIDENCE": "0.001", "PYTHONPATH": "/opt/ml/model/code"})
    driver = Path(__file__).with_name("serving_driver.py")
    process = container.run([str(TOOLKIT_VENV / "bin" / "python"), str(driver), str(container.root / "requests.json"),
                             str(container.root / "responses.json")], env, timeout=600)
    assert process.returncode == 0, process.stdout[-6000:]
    answers = json.loads((container.root / "responses.json").read_text())
    return {"container": container, "answers": dict(zip(bodies, answers, strict=True)), "log": process.stdout,
            "size": Image.open(jpeg).size}


def test_model_package_answers_images_through_the_inference_toolkit(served_model: dict[str, Any]) -> None:
    """GIVEN the model.tar.gz a real training job wrote, unpacked where SageMaker puts ModelDataUrl
    WHEN the PyTorch inference image's toolkit starts it (requirements.txt installed from code/, no
    download) and TorchServe's loader hands it a JPEG, a PNG, and a JSON list of an S3 URI and a base64 PNG
    THEN code/inference.py answers each with JSON detections: per image its size, and for each box the
    class id and name, the confidence and an xyxy box in pixels."""
    model_dir = served_model["container"].host("/opt/ml/model")
    assert {"best.pt", "code"} <= {p.name for p in model_dir.iterdir()}
    assert "Requirement already satisfied: ultralytics==8.4.190" in served_model["log"]
    width, height = served_model["size"]
    for name, images in (("jpeg", 1), ("png", 1), ("json", 2)):
        answer = served_model["answers"][name]
        assert (answer["status"], answer["content_type"]) == (200, "application/json"), answer["body"][-3000:]
        predictions = json.loads(answer["body"])["predictions"]
        assert [(p["width"], p["height"]) for p in predictions] == [(width, height)] * images
        found = [d for p in predictions for d in p["detections"]]
        assert found, f"{name}: no detections at confidence 0.001"
        for detection in found:
            assert set(detection) == {"class_id", "name", "confidence", "box_xyxy"}
            assert detection["name"] in ("square", "disc", "bar") and isinstance(detection["class_id"], int)
            assert 0.001 <= detection["confidence"] <= 1
            x1, y1, x2, y2 = detection["box_xyxy"]
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
    # AND the same image gives the same boxes whichever way it comes
    jpeg = json.loads(served_model["answers"]["jpeg"]["body"])["predictions"][0]
    assert json.loads(served_model["answers"]["json"]["body"])["predictions"][0] == jpeg


def test_model_package_refuses_oversized_requests_with_a_400(served_model: dict[str, Any]) -> None:
    """GIVEN the same endpoint WHEN a request holds 17 images, or a PNG of 49 megapixels (a few kB
    compressed: a decompression bomb) THEN it answers 400 with one line saying what to send instead,
    before decoding anything."""
    too_many, bomb = served_model["answers"]["too_many"], served_model["answers"]["bomb"]
    assert too_many["status"] == 400 and "send at most 16" in too_many["body"].splitlines()[0]
    assert bomb["status"] == 400 and "7000x7000 pixels" in bomb["body"].splitlines()[0]

