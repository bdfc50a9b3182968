"""The `yolopipe` commands as one object for notebooks and scripts.

    from yolopipe.client import Yolopipe

    yp = Yolopipe(profile="ml", region="eu-west-1")        # or Yolopipe(local=True)
    yp.validate("./shapes").ok                             # the trigger's checks, yolopipe.yaml included
    yp.upload("./shapes", "shapes")                         # data.yaml last: the trigger starts training
    arn = yp.run("shapes", epochs=50, model_variant="s")    # any parameter, checked before any call
    yp.run("shapes", imgsz=320, patience=20, optimizer="AdamW", weights="latest")  # Ultralytics' names too
    yp.stage_weights("n")["weights"]                      # Weights=s3://<bucket>/weights/yolo11n.pt
    yp.watch(arn, on_update=print)                          # until it ends; returns its final status
    yp.report(arn)["metrics"]
    yp.compare(arn, "latest")
    yp.approve(arn)                                        # its model package: the baseline to beat
    yp.download(arn)                                       # best.pt, plots, evaluation.json -> runs/<id>/
    yp.predict(arn, ["a.jpg"])[0]["detections"]            # the model on your images, annotated copies

Failures raise the domain errors of yolopipe_shared.errors (ParameterError, DatasetRejected,
PipelineNotFound, ExecutionNotFound) and yolopipe.aws (AwsUnavailable, NotFound), each with a
message that says what to do. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import ParameterError, YolopipeError
from yolopipe_shared.execution_report import parse_time
from yolopipe_shared.layout import split_s3_uri
from yolopipe_shared.parameters import Value
from yolopipe_shared.refusal import Refusal

from . import executions as ex
from .aws import Aws, Settings, aws_errors
from .executions import ExecutionStatus


class JobNotStarted(YolopipeError):
    """`logs` for a step that has no job (not started yet, or a step without one)."""


class NothingRegistered(YolopipeError):
    """`approve` on an execution whose Register step did not run (it failed, or the gate said no)."""


class Yolopipe:
    """One account/region (or the local emulator) and one yolopipe stack."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        local: bool = False,
        stack: str | None = None,
        bucket: str | None = None,
        pipeline: str | None = None,
        session: Any = None,
    ) -> None:
        settings = Settings.from_env(profile=profile, region=region, endpoint_url=endpoint_url, local=local,
                                     stack=stack, bucket=bucket, pipeline=pipeline)
        self.aws = Aws(settings, session=session)

    @classmethod
    def from_settings(cls, settings: Settings, *, session: Any = None) -> Yolopipe:
        client = cls.__new__(cls)
        client.aws = Aws(settings, session=session)
        return client

    @property
    def _sm(self) -> Any:
        return self.aws.client("sagemaker")

    def resolve(self, execution: str) -> str:
        """An execution ARN from an ARN, an execution id of the stack's pipeline, or `latest`."""
        pipeline = "" if execution.startswith("arn:") else self.aws.pipeline_name()
        return ex.find_execution(self._sm, pipeline, execution)

    # --- datasets ----------------------------------------------------------------------------

    @staticmethod
    def validate(path: str | Path, *, label_sample: int | None = None, images: bool = False,
                 limits: Any = None) -> Any:
        """The trigger's checks on a local folder (dataset rules and yolopipe.yaml within `limits`, a
        StackLimits: the template's defaults unless given): a ValidationReport (`.ok`, `.problems`,
        `.summary()`); `images` also decodes every image and looks for orphan label files (what only
        a local copy allows)."""
        from yolopipe_shared.overrides import TEMPLATE_DEFAULT_LIMITS

        from .datasets.validate import check_dataset_folder

        return check_dataset_folder(path, label_sample=label_sample, images=images,
                                    limits=limits or TEMPLATE_DEFAULT_LIMITS)

    def stack_limits(self) -> Any:
        """The deployed stack's bounds on a dataset's yolopipe.yaml (a StackLimits), as its trigger
        applies them; the template's defaults when the stack cannot be read (--bucket without a stack)."""
        from botocore.exceptions import ClientError

        from yolopipe_shared.overrides import StackLimits

        with aws_errors(what=f"stack {self.aws.settings.stack!r}"):
            try:
                stacks = self.aws.client("cloudformation").describe_stacks(StackName=self.aws.settings.stack)["Stacks"]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ValidationError":  # "stack does not exist"
                    raise
                stacks = []
        values = {p["ParameterKey"]: str(p.get("ParameterValue", "")) for s in stacks[:1]
                  for p in s.get("Parameters") or []}
        return StackLimits.from_stack_parameters(values)

    @staticmethod
    def convert(fmt: str, src: str | Path, dst: str | Path, **options: Any) -> Any:
        """COCO / VOC / ImageFolder -> a YOLO dataset (yolopipe.datasets.convert.convert)."""
        from .datasets.convert import convert

        return convert(fmt, src, dst, **options)

    def plan_upload(self, path: str | Path, name: str, *, workers: int = 32) -> Any:
        """What `upload` would send (an UploadPlan: to_send, up_to_date, stale_keys); sends nothing."""
        from .upload import plan_upload

        with aws_errors(what=f"bucket {self.aws.bucket()!r}"):
            return plan_upload(self.aws.client("s3", max_pool_connections=workers), path, self.aws.bucket(), name)

    def upload(self, path: str | Path, name: str, *, trigger: bool = True, delete_stale: bool = False,
               workers: int = 32, validate: bool = True, plan: Any = None,
               progress: Callable[[int, int], None] | None = None) -> Any:
        """Validate (the trigger's checks), then upload to s3://<bucket>/datasets/<name>/ with
        data.yaml last: an UploadResult. DatasetRejected before anything is sent."""
        from .upload import upload_dataset

        if validate:
            self.validate(path, limits=self.stack_limits()).raise_if_rejected()
        with aws_errors(what=f"bucket {self.aws.bucket()!r}"):
            return upload_dataset(self.aws.client("s3", max_pool_connections=workers), path, self.aws.bucket(), name,
                                  trigger=trigger, delete_stale=delete_stale, workers=workers, plan=plan,
                                  progress=progress)

    def wait_for_trigger(self, dataset_uri: str, *, since: Any, timeout: float = 120.0,
                         version: str = "") -> str | Refusal | None:
        """What the trigger did with an uploaded dataset (its data.yaml `version`, written at `since`):
        the execution ARN it started, its Refusal (seconds after it happens), or None after `timeout`."""
        from .refusals import wait_for_outcome

        bucket, prefix = split_s3_uri(dataset_uri)
        dataset = prefix.rstrip("/").rsplit("/", 1)[-1]
        return wait_for_outcome(self._sm, self.aws.client("s3"), pipeline=self.aws.pipeline_name(), bucket=bucket,
                                dataset=dataset, dataset_uri=dataset_uri, since=since, version=version,
                                timeout=timeout)

    def refusals(self, *, limit: int = 20, dataset: str | None = None) -> list[Refusal]:
        """The trigger's newest refusals (refusals/<name>/<version>.json), of one dataset when given."""
        from .refusals import list_refusals

        return list_refusals(self.aws.client("s3"), self.aws.bucket(), limit=limit, dataset=dataset)

    def _known_refusals(self, limit: int) -> list[Refusal]:
        """`refusals`, or none when no dataset bucket is known (a pipeline given without its stack)."""
        from .aws import NotFound

        try:
            self.aws.bucket()
        except NotFound:
            return []
        return self.refusals(limit=limit)

    def latest_refusal(self) -> Refusal | None:
        """The newest refusal when it is newer than the newest execution (what `watch latest` shows
        after an upload the trigger refused), else None."""
        newest = self._known_refusals(1)
        if not newest:
            return None
        started = [row["started"] for row in ex.list_executions(self._sm, self.aws.pipeline_name(), limit=1)]
        refused = parse_time(newest[0].refused_at)
        latest = parse_time(started[0]) if started else None
        return newest[0] if latest is None or (refused is not None and refused >= latest) else None

    # --- pipelines and executions ----------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        return ex.list_pipelines(self._sm)

    def plan_run(self, dataset: str, *, display_name: str | None = None, lower_gate: bool = False,
                 **parameters: Value) -> ex.RunRequest:
        """The StartPipelineExecution request for `dataset` (s3:// URI or a dataset name) with any
        parameter or Ultralytics setting (`epochs=50`, `model_variant="s"`, `patience=20`...), every value
        checked, the dataset's data.yaml found and its version pinned (as the trigger does). `weights` may
        name an execution (id, ARN, `latest`): its model package, else its trained model. A MinMap50_95
        below the deployed gate needs `lower_gate=True`. Starts nothing."""
        parameters = self._weights_from_execution(parameters)
        request = ex.plan_run(self.aws.pipeline_name(), dataset, parameters, bucket=self.aws.bucket,
                              display_name=display_name)
        if "MinMap50_95" in request.parameters:
            from yolopipe_shared.parameters import BY_NAME, check_gate

            stack_gate = ex.pipeline_defaults(self._sm, request.pipeline).get(
                "MinMap50_95", BY_NAME["MinMap50_95"].default)
            warning = check_gate(request.parameters, stack_gate, lower_gate=lower_gate)
            request = replace(request, warnings=[warning] if warning else [])
        version = ex.check_dataset(self.aws.client("s3"), str(request.parameters["DatasetS3Uri"]))
        request.parameters.setdefault("DatasetVersion", version)
        return request

    def run(self, dataset: str, *, display_name: str | None = None, dry_run: bool = False, lower_gate: bool = False,
            **parameters: Value) -> str | dict[str, Any]:
        """Start the pipeline (see `plan_run`): the execution ARN, or with `dry_run` what would
        start (every effective parameter value and the API request)."""
        request = self.plan_run(dataset, display_name=display_name, lower_gate=lower_gate, **parameters)
        if dry_run:
            return {**request.to_dict(ex.pipeline_defaults(self._sm, request.pipeline)),
                    "api_request": request.api_request()}
        return self.start(request)

    def _weights_from_execution(self, values: dict[str, Value]) -> dict[str, Value]:
        """`weights="latest"` (or an execution id / ARN) -> that execution's model package ARN, else the
        model.tar.gz its Train step wrote; other values are left for the parameter check."""
        from yolopipe_shared.errors import ParameterError
        from yolopipe_shared.parameters import spec_for
        from yolopipe_shared.weights import check_weights

        key = next((k for k in values if k.lstrip("-").lower() == "weights"), None)
        if key is None:
            return values
        try:
            check_weights(values[key])
            return values
        except ParameterError:
            if spec_for(key).name != "Weights" or str(values[key]).startswith("s3://"):
                raise
        arn = self.resolve(str(values[key]))
        status = ex.execution_status(self._sm, arn)
        found = [str(s.metadata["RegisterModel"].get("Arn") or "") for s in status.steps
                 if "RegisterModel" in s.metadata]
        if not any(found):
            with aws_errors(what=f"execution {arn.rsplit('/', 1)[-1]!r}"):
                found = [str((self._sm.describe_training_job(TrainingJobName=s.metadata["TrainingJob"]["Arn"].rsplit(
                    "/", 1)[-1]).get("ModelArtifacts") or {}).get("S3ModelArtifacts") or "")
                    for s in status.steps if "TrainingJob" in s.metadata]
        model = next((m for m in found if m), "")
        if not model:
            raise ParameterError(f"execution {arn.rsplit('/', 1)[-1]} has no trained model to start from "
                                 f"(status {status.status}); name another execution or Weights=pretrained")
        return {**values, key: model}

    def stage_weights(self, variant: str = "n") -> dict[str, Any]:
        """Put the official yolo11{variant}.pt (Ultralytics' weights folder, else downloaded by Ultralytics)
        in the stack's bucket under weights/: {"uri", "weights" ("Weights=s3://..."), "local_path", "bytes",
        "uploaded"}. For jobs that cannot reach the internet."""
        from yolopipe_shared.parameters import BY_NAME

        from .weights import stage

        BY_NAME["ModelVariant"].coerce(variant)
        with aws_errors(what=f"bucket {self.aws.bucket()!r}"):
            return stage(self.aws.client("s3"), self.aws.bucket(), variant).to_dict()

    def start(self, request: ex.RunRequest) -> str:
        """StartPipelineExecution for a planned request: the execution ARN."""
        return ex.start_run(self._sm, request)

    def executions(self, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest executions and refused datasets (status Refused, no id), newest first."""
        from .refusals import refusal_row

        rows = ex.list_executions(self._sm, self.aws.pipeline_name(), limit=limit)
        rows += [refusal_row(refusal) for refusal in self._known_refusals(limit)]
        rows.sort(key=lambda row: parse_time(row["started"]) or datetime.min.replace(tzinfo=UTC), reverse=True)
        return rows[:limit]

    def status(self, execution: str = "latest") -> ExecutionStatus:
        return ex.execution_status(self._sm, self.resolve(execution))

    def watch(self, execution: str = "latest", *, on_update: Callable[[ExecutionStatus], None] | None = None,
              interval: float = 10.0, timeout: float | None = None, progress: bool = True) -> ExecutionStatus:
        """Poll until the execution ends; each update carries the Train job's epoch progress in
        `.progress` (a TrainingProgress read from its CloudWatch Logs) unless `progress=False`."""
        from .job_logs import training_progress

        logs = self.aws.client("logs") if progress else None
        finished: dict[str, Any] = {}  # job name -> its final progress (read once after it ended)

        def with_progress(status: ExecutionStatus) -> None:
            train = next((s for s in status.steps if s.job_kind == "TrainingJob"), None)
            if logs is not None and train is not None and not train.cache_source:
                name = train.job_name
                if name in finished:
                    status.progress = finished[name]
                else:
                    with aws_errors(what=f"the logs of training job {name!r}"):
                        status.progress = training_progress(logs, name)
                    if train.status not in ("Executing", "Starting", "Stopping"):
                        finished[name] = status.progress
            (on_update or (lambda _: None))(status)

        return ex.watch(self._sm, self.resolve(execution), on_update=with_progress, interval=interval, timeout=timeout)

    def progress(self, execution: str = "latest") -> Any:
        """The Train job's epoch progress (TrainingProgress: latest epoch, losses, mAP50-95, images/s,
        ETA, best epoch), or None before the Train step has a job or when it reused a cached one."""
        from .job_logs import training_progress

        status = self.status(execution)
        train = next((s for s in status.steps if s.job_kind == "TrainingJob" and not s.cache_source), None)
        if train is None:
            return None
        with aws_errors(what=f"the logs of training job {train.job_name!r}"):
            return training_progress(self.aws.client("logs"), train.job_name)

    def logs(self, execution: str = "latest", *, step: str = "Train", follow: bool = False,
             interval: float = 5.0) -> Iterator[str]:
        """The step's job output, line by line, from CloudWatch Logs (`follow`: until the step ends).
        A step reused from the step cache shows the job it reused. JobNotStarted when the step has no job yet."""
        from .job_logs import log_lines

        arn = self.resolve(execution)
        status = ex.execution_status(self._sm, arn)
        found = status.step(step)
        while follow and (found is None or not found.job_kind) and not status.done:
            time.sleep(interval)  # --follow on a step still to come: wait for its job
            status = ex.execution_status(self._sm, arn)
            found = status.step(step)
        if found is None or not found.job_kind:
            names = ", ".join(s.step_name or s.name for s in status.steps if s.job_kind) or "none yet"
            raise JobNotStarted(f"step {step!r} of execution {arn.rsplit('/', 1)[-1]} has no job "
                                f"(steps with a job: {names}); try again once it runs, or pick another --step")

        def finished() -> bool:
            current = ex.execution_status(self._sm, arn).step(step)
            return current is None or current.status not in ("Executing", "Starting", "Stopping")

        with aws_errors(what=f"the logs of job {found.job_name!r}"):
            yield from log_lines(self.aws.client("logs"), found.job_kind, found.job_name, follow=follow,
                                 finished=finished, interval=interval)

    def report(self, execution: str = "latest") -> dict[str, Any]:
        return ex.report(self._sm, self.aws.client("s3"), self.resolve(execution), prices=self._prices)

    def compare(self, *execution_refs: str) -> list[dict[str, Any]]:
        return ex.compare(self._sm, self.aws.client("s3"), [self.resolve(e) for e in execution_refs],
                          prices=self._prices)

    @property
    def _prices(self) -> Any:
        """Prices from the Price List API with this session's credentials, cached while this object
        lives; against another endpoint (the local emulator), the dated list-price table only."""
        if getattr(self, "_price_list", None) is None:
            from yolopipe_shared.cost import PriceList, pricing_client

            local = bool(self.aws.settings.endpoint_url)
            self._price_list = PriceList(None if local else pricing_client(self.aws.session))
        return self._price_list

    def stop(self, execution: str) -> str:
        return ex.stop(self._sm, self.resolve(execution))

    def approve(self, ref: str = "latest", *, approved: bool = True) -> dict[str, Any]:
        """Approve (or with `approved=False` reject) a model package: UpdateModelPackage.

        `ref` is a model package ARN, or an execution (id, ARN or `latest`) whose Register step
        created one; an execution that registered nothing raises NothingRegistered. The latest Approved
        package of the group is the baseline the next executions' Evaluate step must beat.
        Returns {"model_package_arn", "group", "version", "approval_status", "previous_status",
        "execution_arn" (None for a package ARN)}.
        """
        execution_arn: str | None = None
        if ":model-package/" in ref:
            package_arn = ref
        else:
            execution_arn = self.resolve(ref)
            status = ex.execution_status(self._sm, execution_arn)
            registered = [str(step.metadata["RegisterModel"].get("Arn") or "") for step in status.steps
                          if "RegisterModel" in step.metadata]
            package_arn = next((arn for arn in registered if arn), "")
            if not package_arn:
                raise NothingRegistered(f"execution {execution_arn.rsplit('/', 1)[-1]} registered no model package "
                               f"(status {status.status}): nothing to {'approve' if approved else 'reject'}")
        with aws_errors(what=f"model package {package_arn!r}"):
            before = self._sm.describe_model_package(ModelPackageName=package_arn)
            new_status = "Approved" if approved else "Rejected"
            self._sm.update_model_package(
                ModelPackageArn=package_arn, ModelApprovalStatus=new_status,
                ApprovalDescription=f"{new_status.lower()} with yolopipe approve",
            )
            after = self._sm.describe_model_package(ModelPackageName=package_arn)
        return {
            "model_package_arn": package_arn,
            "group": after.get("ModelPackageGroupName", ""),
            "version": after.get("ModelPackageVersion"),
            "approval_status": after.get("ModelApprovalStatus", ""),
            "previous_status": before.get("ModelApprovalStatus", ""),
            "execution_arn": execution_arn,
        }

    # --- the model and its evidence ---------------------------------------------------------

    def download(self, execution: str = "latest", to: str | Path | None = None) -> list[Path]:
        """An execution's model (model/: best.pt, last.pt, args.yaml, results.csv...), training plots
        (training/), evaluation.json and its plots (evaluation/) into `to` (default runs/<execution-id>/):
        the files written. NoModel when its Train step did not finish."""
        from . import artifacts

        arn = self.resolve(execution)
        folder = Path(to) if to is not None else Path("runs") / arn.rsplit("/", 1)[-1]
        return artifacts.download(self._sm, self.aws.client("s3"), arn, folder)

    def predict(self, model: str, images: Sequence[str | Path], *, out: str | Path | None = None,
                conf: float = 0.25) -> list[dict[str, Any]]:
        """Run a model on local images and write annotated copies (Ultralytics' own plotting).

        `model` is a local .pt, a model package ARN, or an execution (id, ARN or `latest`); a remote
        model is downloaded once into runs/<execution-id or group-vN>/model/. `out` defaults to
        runs/<that name>/predict/ (runs/predict/ for a .pt). Returns per image {"image", "annotated",
        "width", "height", "detections": [{"class_id", "name", "confidence", "box_xyxy"}]}.
        """
        from . import artifacts

        if model.endswith(".pt") and not model.startswith("arn:"):
            if not Path(model).is_file():
                raise ParameterError(f"{model} is not a file; give a .pt, an execution or a model package ARN")
            weights, label = Path(model), ""
        else:
            if ":model-package/" in model:
                with aws_errors(what=f"model package {model!r}"):
                    package = self._sm.describe_model_package(ModelPackageName=model)
                containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
                uri = str(containers[0].get("ModelDataUrl") or "") if containers else ""
                label = f"{package.get('ModelPackageGroupName', 'package')}-v{package.get('ModelPackageVersion')}"
            else:
                arn = self.resolve(model)
                uri, label = artifacts.find_sources(self._sm, arn).model, arn.rsplit("/", 1)[-1]
            if not uri.startswith("s3://"):
                raise artifacts.NoModel(f"{model} has no trained model to run (no model.tar.gz)")
            weights = artifacts.fetch_model(self.aws.client("s3"), uri, Path("runs") / label / artifacts.MODEL_FOLDER)
        folder = Path(out) if out is not None else Path("runs", label, "predict")
        return artifacts.predict(weights, images, folder, conf=conf)

    def doctor(self, *, instance_type: str | None = None) -> list[Any]:
        """Every readiness check (doctor.Check: name, status ok/warn/fail/skip, detail, fix)."""
        from .doctor import run_checks

        return run_checks(self.aws, instance_type=instance_type)
