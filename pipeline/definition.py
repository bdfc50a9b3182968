"""The yolopipe SageMaker Pipeline, built with the SageMaker Python SDK v3.

    DatasetS3Uri ──► Train ──► Evaluate ──► CheckQuality ─┬─ map50_95 >= MinMap50_95 ─► Register
                     (spot,     (processing   (JsonGet on  │  and improvement            (PendingManualApproval,
                   checkpoints)  job, eval-    evaluation  │      >= MinImprovement      evaluation.json and the
                                 uation.json;  .json)      │                             comparison attached)
                                 the approved              └─ otherwise ─────────────► QualityGateFailed
                                 model scored too)                                     (the verdict: "0.571 <
                                                                                        approved v3 0.587: ...")

Champion / challenger: Evaluate also scores the group's latest Approved model package on the same
split (`--model-package-group`); `comparison.improvement` in evaluation.json is the candidate's
map50_95 minus the approved one's (1.0 when there is none or it cannot be read, so that the fixed
gate decides alone), and `comparison.verdict` is the line the Fail message and the notifier show.

`build_pipeline(config)` returns the unexecuted `Pipeline`; `pipeline.render` turns it into the JSON
that the deploy function upserts. Every pipeline parameter comes from `yolopipe_shared.parameters`;
every deploy-time value (bucket, role, region, code tarball URI) is a `${Name}` placeholder by
default (see `yolopipe_shared.pipeline_template.PLACEHOLDERS`), filled later by `pipeline.render.substitute`.

Training code reaches the containers as one content-addressed tarball (`pipeline.code_bundle`):
the training job gets it through the framework toolkit's `sagemaker_program` /
`sagemaker_submit_directory` hyperparameters (the toolkit downloads and unpacks the tarball, pip
installs its requirements.txt and runs `train.py`), and the evaluation job unpacks the same tarball
itself and starts its `run_evaluate.sh`. So building the definition never uploads anything and the
JSON is byte-identical run to run.

Building needs no credentials and no network: the SDK's role lookup, telemetry and default-bucket
calls are all avoided (see `_session`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yolopipe_shared.errors import DefinitionError
from yolopipe_shared.evaluation import (
    EVALUATION_FILE,
    EVALUATION_OUTPUT_NAME,
    EVALUATION_PROPERTY_FILE,
    IMPROVEMENT_JSON_PATH,
    QUALITY_METRIC,
    QUALITY_METRIC_JSON_PATH,
    SUMMARY_JSON_PATH,
    VERDICT_JSON_PATH,
)
from yolopipe_shared.parameters import PARAMETERS, ParameterSpec
from yolopipe_shared.pipeline_template import PLACEHOLDERS, placeholder
from yolopipe_shared.training_progress import METRIC_DEFINITIONS

if TYPE_CHECKING:
    from sagemaker.mlops.workflow.pipeline import Pipeline

__all__ = ["PLACEHOLDERS", "PipelineConfig", "build_pipeline", "pipeline_parameters"]

# Step names: the notifier, the CLI and the local executor read these.
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_CHECK_QUALITY = "CheckQuality"
STEP_REGISTER = "Register"
STEP_FAIL = "QualityGateFailed"

#: The PyTorch deep learning containers (GPU). Keep in step with training_code/requirements.txt.
PYTORCH_VERSION = "2.8.0"
#: The newest PyTorch inference DLC (the model package's serving image): model.tar.gz's code/inference.py
#: (training_code/serving/) is tested with that image's serving toolkit (tests/integration/toolkit-requirements.txt).
PYTORCH_INFERENCE_VERSION = "2.6.0"
#: What code/inference.py's input_fn accepts and output_fn answers (its CONTENT_TYPES / RESPONSE_TYPES).
SERVING_CONTENT_TYPES = ("image/jpeg", "image/png", "application/json")
SERVING_RESPONSE_TYPES = ("application/json",)
PYTHON_VERSION = "py312"
#: The DLC registry of most commercial regions; a concrete region looks its own up in the SDK's
#: image_uri_config (a few opt-in regions use another account).
DLC_ACCOUNT = "763104351884"

#: The PyTorch training toolkit's switch for its torchrun launcher (sagemaker-pytorch-training's
#: LAUNCH_TORCH_DISTRIBUTED_ENV_NAME; JSON-decoded, so "true" is True).
TORCH_DISTRIBUTED_SWITCH = "sagemaker_torch_distributed_enabled"

#: Key prefixes in the stack's bucket (the SageMaker execution role may write only under these).
ARTIFACTS_PREFIX = "artifacts/"
CHECKPOINTS_PREFIX = "checkpoints/"

#: Where things live in the processing container.
PROCESSING_ROOT = "/opt/ml/processing"
_CODE_DIR = f"{PROCESSING_ROOT}/code"
_MODEL_DIR = f"{PROCESSING_ROOT}/model"
_DATASET_DIR = f"{PROCESSING_ROOT}/dataset"
_EVALUATION_DIR = f"{PROCESSING_ROOT}/evaluation"
#: Where the evaluation job unpacks the code tarball, and the program it runs from there.
_UNPACKED_CODE_DIR = "/tmp/yolopipe-code"  # noqa: S108 (a path inside the processing container)
_EVALUATE_PROGRAM = "run_evaluate.sh"
#: A stand-in the SDK accepts while building; the step arguments carry the real value.
_SDK_ROLE_STANDIN = "arn:aws:iam::000000000000:role/yolopipe-render-standin"
_SDK_CODE_STANDIN = "s3://yolopipe-render-standin/code.tar.gz"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the definition needs besides the pipeline parameters (deploy-time values)."""

    pipeline_name: str = "yolopipe"
    bucket: str = placeholder("Bucket")
    role_arn: str = placeholder("RoleArn")
    region: str = placeholder("Region")
    code_s3_uri: str = placeholder("CodeS3Uri")
    pytorch_version: str = PYTORCH_VERSION
    pytorch_inference_version: str = PYTORCH_INFERENCE_VERSION
    python_version: str = PYTHON_VERSION
    #: Override the training / evaluation image (default: the PyTorch training DLC, GPU).
    training_image: str | None = None
    #: Image recorded in the model package for serving (default: the PyTorch inference DLC, GPU).
    inference_image: str | None = None
    evaluation_instance_type: str = "ml.g4dn.xlarge"
    evaluation_max_runtime_seconds: int = 2 * 3600
    volume_size_gb: int = 50
    #: How long a finished Train step can be reused for the same inputs (ISO 8601).
    cache_expire_after: str = "P30D"

    def dlc_image(self, scope: str, version: str, device: str = "gpu") -> str:
        """`763104351884.dkr.ecr.<region>.amazonaws.com/pytorch-training:2.8.0-gpu-py312`; with a region
        placeholder, the account is the `${ImageAccountId}` placeholder the deploy function fills."""
        placeholder_region = self.region.startswith("${")
        account = placeholder("ImageAccountId") if placeholder_region else _dlc_account(scope, version, self.region)
        return (
            f"{account}.dkr.ecr.{self.region}.amazonaws.com/"
            f"pytorch-{scope}:{version}-{device}-{self.python_version}"
        )

    @property
    def training_image_uri(self) -> str:
        return self.training_image or self.dlc_image("training", self.pytorch_version)

    @property
    def inference_image_uri(self) -> str:
        return self.inference_image or self.dlc_image("inference", self.pytorch_inference_version)


def _dlc_account(scope: str, version: str, region: str) -> str:
    """The DLC registry account of `region`, from the SDK's offline image_uri_config."""
    import json
    from importlib import resources

    table = json.loads(resources.files("sagemaker.core.image_uri_config").joinpath("pytorch.json").read_text())
    registries = table[scope]["versions"][version]["registries"]
    if region not in registries:
        raise DefinitionError(f"no PyTorch {version} {scope} image in region {region!r}; check --region")
    return str(registries[region])


# ---------------------------------------------------------------------------------------------
# SDK plumbing


def _ensure_offline_sdk_environment(region: str) -> None:
    """The SDK raises NoRegionError at import without a region and calls IAM to check roles."""
    os.environ.setdefault("AWS_DEFAULT_REGION", region if not region.startswith("${") else "us-east-1")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"


def _session(region: str) -> Any:
    """A PipelineSession with telemetry off and no SDK defaults files (they would change the JSON)."""
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    boto_region = region if not region.startswith("${") else os.environ["AWS_DEFAULT_REGION"]
    sdk_config = {
        "SchemaVersion": "1.0",
        "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
    }
    return PipelineSession(
        boto_session=boto3.Session(region_name=boto_region),
        sagemaker_config=sdk_config,
        default_bucket="yolopipe-render-standin",
    )


def pipeline_parameters() -> dict[str, Any]:
    """One SageMaker Parameter per spec in yolopipe_shared.parameters, keyed by name, in spec order."""
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    def make(spec: ParameterSpec) -> Any:
        if spec.kind == "string":
            return ParameterString(name=spec.name, default_value=str(spec.default))
        if spec.kind == "integer":
            return ParameterInteger(name=spec.name, default_value=int(spec.default))
        if spec.kind == "float":
            return ParameterFloat(name=spec.name, default_value=float(spec.default))
        return ParameterBoolean(name=spec.name, default_value=bool(spec.default))

    return {spec.name: make(spec) for spec in PARAMETERS}


def _retry_policies(job: bool) -> list[Any]:
    """Retry what is worth retrying: capacity (spot, GPUs), throttling, service faults."""
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    policies: list[Any] = [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        )
    ]
    if job:
        policies.append(
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                ],
                interval_seconds=300,
                backoff_rate=2.0,
                expire_after_mins=12 * 60,
            )
        )
        # RESOURCE_LIMIT (ResourceLimitExceeded: the account's quota for the instance type is used
        # up) is bounded apart from capacity: capacity comes back by itself, a quota does not. New
        # accounts have 0 for most GPU types, and retrying for 12 hours would leave the execution
        # "Executing" with nothing said. Two retries (after 5 and 10 more minutes) let a job that
        # holds the quota finish; then the step fails and the notice says to request an increase.
        policies.append(
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT],
                interval_seconds=300,
                backoff_rate=2.0,
                max_attempts=2,
            )
        )
    return policies


# ---------------------------------------------------------------------------------------------
# The steps


def _train_step(config: PipelineConfig, session: Any, params: dict[str, Any]) -> Any:
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.steps import CacheConfig, TrainingStep
    from sagemaker.train import ModelTrainer

    # ModelTrainer's pydantic configs take no pipeline variables for spot and stopping condition,
    # nor a placeholder role: build with stand-ins, then put the real values in the arguments.
    # Spot is on here; a stack with UseSpotInstances=false gets it switched off (and MaxWait
    # dropped, which SageMaker requires) by the deploy function: pipeline_template.set_managed_spot.
    overrides = {
        "RoleArn": config.role_arn,
        "EnableManagedSpotTraining": True,
        # SageMaker rejects MaxWaitTimeInSeconds < MaxRuntimeInSeconds; equal keeps both bounded.
        "StoppingCondition": {
            "MaxRuntimeInSeconds": params["MaxRuntimeSeconds"],
            "MaxWaitTimeInSeconds": params["MaxRuntimeSeconds"],
        },
        # The dataset's version is in the step's arguments, hence in its cache key: a new upload
        # under the same prefix retrains, a retry of the same version reuses the finished job.
        "Environment": {"PYTHONUNBUFFERED": "1", "YOLOPIPE_DATASET_VERSION": params["DatasetVersion"]},
    }

    class _TrainingStep(TrainingStep):  # type: ignore[misc]
        @property
        def arguments(self) -> dict[str, Any]:
            request = dict(super().arguments)
            request.update(overrides)
            # Per-epoch metrics the SageMaker way: parsed from train.py's epoch lines into the
            # console's metrics, CloudWatch and FinalMetricDataList (yolopipe_shared.training_progress).
            request["AlgorithmSpecification"] = {**request.get("AlgorithmSpecification", {}),
                                                 "MetricDefinitions": METRIC_DEFINITIONS}
            return request

    # Checkpoints are keyed by what is trained (dataset + training parameters), not by execution:
    # CheckpointConfig is part of the step's cache key, and a re-run of a failed training resumes.
    # The dataset enters by its label (DatasetName), not its URI: the key stays
    # checkpoints/<name>/<version>/..., without a second scheme or empty segments.
    checkpoint_uri = Join(
        on="/",
        values=[
            f"s3://{config.bucket}/{CHECKPOINTS_PREFIX.rstrip('/')}",
            params["DatasetName"],
            params["DatasetVersion"],
            params["ModelVariant"],
            params["ImageSize"].to_string(),
            params["Epochs"].to_string(),
            params["BatchSize"].to_string(),
            params["LearningRate"].to_string(),
        ],
    )
    trainer = ModelTrainer(
        training_image=config.training_image_uri,
        role=_SDK_ROLE_STANDIN,
        sagemaker_session=session,
        base_job_name="yolopipe-train",
        compute=Compute(
            instance_type=params["TrainingInstanceType"],
            instance_count=params["TrainingInstanceCount"],
            volume_size_in_gb=config.volume_size_gb,
            enable_managed_spot_training=True,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=86400, max_wait_time_in_seconds=86400),
        hyperparameters={
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": config.code_s3_uri,
            # What the SDK's distribution={"torch_distributed": {"enabled": True}} sets: the toolkit runs
            # torchrun on every instance (--nnodes TrainingInstanceCount, a process per GPU, 1 on CPU).
            # Always on: TrainingInstanceCount is a parameter, and one process in all is today's run.
            TORCH_DISTRIBUTED_SWITCH: "true",
            # Each parameter under its training name (ParameterSpec.hyperparameter); integers and
            # floats as text, as CreateTrainingJob's string-only HyperParameters require.
            **{spec.hyperparameter: params[spec.name] if spec.kind == "string" else params[spec.name].to_string()
               for spec in PARAMETERS if spec.hyperparameter},
            # MLflow runs go to an experiment named after the pipeline (constant: the step cache holds).
            # Not the execution id, which would make every execution retrain: evaluate.py names the run.
            "mlflow_experiment": ExecutionVariables.PIPELINE_NAME,
        },
        input_data_config=[InputData(channel_name="dataset", data_source=params["DatasetS3Uri"])],
        checkpoint_config=CheckpointConfig(s3_uri=checkpoint_uri, local_path="/opt/ml/checkpoints"),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{config.bucket}/{ARTIFACTS_PREFIX}models"),
    )
    return _TrainingStep(
        name=STEP_TRAIN,
        display_name="Train YOLO11",
        description="Fine-tune YOLO11 on the dataset (managed spot, resumable from checkpoints)",
        step_args=trainer.train(),
        cache_config=CacheConfig(enable_caching=True, expire_after=config.cache_expire_after),
        retry_policies=_retry_policies(job=True),
    )


def _evaluate_step(config: PipelineConfig, session: Any, params: dict[str, Any], train: Any) -> Any:
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    class _ProcessingStep(ProcessingStep):  # type: ignore[misc]
        @property
        def arguments(self) -> dict[str, Any]:
            request = dict(super().arguments)
            request["RoleArn"] = config.role_arn
            for item in request.get("ProcessingInputs", []):
                if item.get("InputName") == "code":
                    item["S3Input"]["S3Uri"] = config.code_s3_uri
            return request

    # The container unpacks the same tarball the training job runs (exactly one under the code
    # input) and starts run_evaluate.sh from it, which installs requirements.txt and runs evaluate.py
    # with the job's arguments. The logic lives in the tarball: CreateProcessingJob takes at most
    # 256 characters per ContainerEntrypoint / ContainerArguments string.
    script = (
        f"set -eu; mkdir -p {_UNPACKED_CODE_DIR}; tar -xzf {_CODE_DIR}/*.tar.gz -C {_UNPACKED_CODE_DIR}; "
        f'exec sh {_UNPACKED_CODE_DIR}/{_EVALUATE_PROGRAM} "$@"'
    )
    processor = Processor(
        role=_SDK_ROLE_STANDIN,
        image_uri=config.training_image_uri,
        instance_count=1,
        instance_type=config.evaluation_instance_type,
        # The fourth string is the script's $0; ContainerArguments follow as "$@".
        entrypoint=["/bin/sh", "-c", script, _EVALUATE_PROGRAM],
        volume_size_in_gb=config.volume_size_gb,
        max_runtime_in_seconds=config.evaluation_max_runtime_seconds,
        base_job_name="yolopipe-evaluate",
        sagemaker_session=session,
        # boto3 in evaluate.py (the approved baseline's lookup) needs the region.
        env={"PYTHONUNBUFFERED": "1", "AWS_DEFAULT_REGION": config.region},
    )

    def s3_input(name: str, uri: Any, local: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=local, s3_data_type="S3Prefix", s3_input_mode="File"
            ),
        )

    step_args = processor.run(
        inputs=[
            s3_input("code", _SDK_CODE_STANDIN, _CODE_DIR),
            s3_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, _MODEL_DIR),
            s3_input("dataset", params["DatasetS3Uri"], _DATASET_DIR),
        ],
        outputs=[
            ProcessingOutput(
                output_name=EVALUATION_OUTPUT_NAME,
                s3_output=ProcessingS3Output(
                    s3_uri=Join(
                        on="/",
                        values=[
                            f"s3://{config.bucket}/{ARTIFACTS_PREFIX}evaluations",
                            ExecutionVariables.PIPELINE_EXECUTION_ID,
                        ],
                    ),
                    local_path=_EVALUATION_DIR,
                    s3_upload_mode="EndOfJob",
                ),
            )
        ],
        arguments=[
            "--model", f"{_MODEL_DIR}/model.tar.gz", "--data", _DATASET_DIR, "--output", _EVALUATION_DIR,
            # The baseline to beat, and the thresholds for the verdict's wording (CheckQuality decides).
            "--model-package-group", params["ModelPackageGroupName"],
            "--min-map50-95", params["MinMap50_95"].to_string(),
            "--min-improvement", params["MinImprovement"].to_string(),
            # MLflow tracking (off when empty) of the run that trained the model, named after the execution.
            "--mlflow-tracking-uri", params["MlflowTrackingUri"],
            "--mlflow-experiment", ExecutionVariables.PIPELINE_NAME,
            "--mlflow-run-name", ExecutionVariables.PIPELINE_EXECUTION_ID,
        ],
    )
    report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name=EVALUATION_OUTPUT_NAME, path=EVALUATION_FILE)
    step = _ProcessingStep(
        name=STEP_EVALUATE,
        display_name="Evaluate",
        description="mAP50-95, mAP50, precision and recall on the test split (val if none)",
        step_args=step_args,
        property_files=[report],
        # Not cached: the approved model it compares with is not among its arguments, so a cached
        # evaluation would judge the candidate against whichever model was approved back then.
        retry_policies=_retry_policies(job=True),
    )
    return step, report


def _register_step(config: PipelineConfig, params: dict[str, Any], train: Any, evaluate: Any, metric: Any,
                   comparison: Any) -> Any:
    """CreateModelPackage in ModelPackageGroupName, PendingManualApproval, evaluation attached.

    ModelBuilder.register() would look up the account (STS) and stage code while building, so the
    step is written directly against the SDK's Step base class, in CreateModelPackage's shape.
    """
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import Properties
    from sagemaker.mlops.workflow.steps import Step, StepTypeEnum

    evaluation_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs[EVALUATION_OUTPUT_NAME].S3Output.S3Uri,
            EVALUATION_FILE,
        ],
    )
    request: dict[str, Any] = {
        "ModelPackageGroupName": params["ModelPackageGroupName"],
        "ModelPackageDescription": Join(
            on=" ", values=["YOLO11", params["ModelVariant"], "trained on", params["DatasetS3Uri"]]
        ),
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": config.inference_image_uri,
                    "ModelDataUrl": train.properties.ModelArtifacts.S3ModelArtifacts,
                }
            ],
            "SupportedContentTypes": list(SERVING_CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(SERVING_RESPONSE_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": ["ml.g4dn.xlarge", "ml.g5.xlarge", "ml.c5.xlarge"],
            "SupportedTransformInstanceTypes": ["ml.g4dn.xlarge", "ml.c5.xlarge"],
        },
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
        },
        "CustomerMetadataProperties": {
            # Values must match [\p{L}\p{Z}\p{N}_.:/=+\-@]*: the dataset's label, not its name or URI.
            "DatasetName": params["DatasetName"],
            "ModelVariant": params["ModelVariant"],
            QUALITY_METRIC: metric.to_string(),
            # "vs v3: +0.025" / "first model": evaluate.py writes it in the metadata alphabet.
            "ComparedWithApproved": comparison,
        },
    }

    class _RegisterModelPackage(Step):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(
                name=STEP_REGISTER,
                display_name="Register model",
                description="Model package awaiting manual approval, with its evaluation",
                step_type=StepTypeEnum.REGISTER_MODEL,
            )
            self._properties = Properties(step_name=STEP_REGISTER, step=self, shape_name="DescribeModelPackageOutput")

        @property
        def arguments(self) -> dict[str, Any]:
            return request

        @property
        def properties(self) -> Any:
            return self._properties

        def to_request(self) -> dict[str, Any]:
            step = dict(super().to_request())
            step["RetryPolicies"] = [policy.to_request() for policy in _retry_policies(job=False)]
            return step

    return _RegisterModelPackage()


def build_pipeline(config: PipelineConfig | None = None) -> Pipeline:
    """The unexecuted yolopipe pipeline: Train -> Evaluate -> CheckQuality -> Register | Fail."""
    config = config or PipelineConfig()
    _ensure_offline_sdk_environment(config.region)

    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    session = _session(config.region)
    params = pipeline_parameters()
    train = _train_step(config, session, params)
    evaluate, report = _evaluate_step(config, session, params, train)
    def report_value(path: str) -> Any:
        return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)

    metric = report_value(QUALITY_METRIC_JSON_PATH)
    improvement = report_value(IMPROVEMENT_JSON_PATH)
    register = _register_step(config, params, train, evaluate, metric, report_value(SUMMARY_JSON_PATH))
    fail = FailStep(
        name=STEP_FAIL,
        display_name="Quality gate failed",
        description="The model did not reach MinMap50_95 or did not beat the approved model by MinImprovement",
        # "quality gate: 0.571 < approved v3 0.587: -0.016, not registered (map50_95 0.571,
        # MinMap50_95 0.5, MinImprovement 0.0)": the verdict says which condition decided.
        error_message=Join(
            on=" ",
            values=["quality gate:", report_value(VERDICT_JSON_PATH), Join(on="", values=[
                f"({QUALITY_METRIC} ", metric, ", MinMap50_95 ", params["MinMap50_95"],
                ", MinImprovement ", params["MinImprovement"], ")"])],
        ),
    )
    check = ConditionStep(
        name=STEP_CHECK_QUALITY,
        display_name="Check quality",
        description=f"{QUALITY_METRIC} >= MinMap50_95 and its improvement over the approved model >= MinImprovement "
                    "register the model, otherwise the execution fails",
        conditions=[
            ConditionGreaterThanOrEqualTo(left=metric, right=params["MinMap50_95"]),
            ConditionGreaterThanOrEqualTo(left=improvement, right=params["MinImprovement"]),
        ],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name=config.pipeline_name,
        parameters=list(params.values()),
        steps=[train, evaluate, check],
        sagemaker_session=session,
        # No Experiments/Trials: the execution role would need sagemaker:CreateExperiment & co.
        pipeline_experiment_config=None,
    )
