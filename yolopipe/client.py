"""The `yolopipe` commands as one object for notebooks and scripts.

    from yolopipe.client import Yolopipe

    yp = Yolopipe(profile="ml", region="eu-west-1")        # or Yolopipe(local=True)
    yp.validate("./shapes").ok                             # the trigger's checks, yolopipe.yaml included
    yp.upload("./shapes", "shapes")                         # data.yaml last: the trigger starts training
    arn = yp.run("shapes", epochs=50, model_variant="s")    # any parameter, checked before any call
    yp.watch(arn, on_update=print)                          # until it ends; returns its final status
    yp.report(arn)["metrics"]
    yp.compare(arn, "latest")
    yp.approve(arn)                                        # its model package: the baseline to beat

Failures raise the domain errors of yolopipe_shared.errors (ParameterError, DatasetRejected,
PipelineNotFound, ExecutionNotFound) and yolopipe.aws (AwsUnavailable, NotFound), each with a
message that says what to do. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.parameters import Value

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
    def validate(path: str | Path, *, label_sample: int | None = None) -> Any:
        """The trigger's checks on a local folder (dataset rules and yolopipe.yaml): a
        ValidationReport (`.ok`, `.problems`, `.summary()`)."""
        from .datasets.validate import check_dataset_folder

        return check_dataset_folder(path, label_sample=label_sample)

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
            self.validate(path).raise_if_rejected()
        with aws_errors(what=f"bucket {self.aws.bucket()!r}"):
            return upload_dataset(self.aws.client("s3", max_pool_connections=workers), path, self.aws.bucket(), name,
                                  trigger=trigger, delete_stale=delete_stale, workers=workers, plan=plan,
                                  progress=progress)

    def wait_for_trigger(self, dataset_uri: str, *, since: Any, timeout: float = 120.0) -> str | None:
        """The execution the trigger starts for an uploaded dataset, or None within `timeout` seconds."""
        return ex.wait_for_execution(self._sm, self.aws.pipeline_name(), dataset_uri, since=since, timeout=timeout)

    # --- pipelines and executions ----------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        return ex.list_pipelines(self._sm)

    def plan_run(self, dataset: str, *, display_name: str | None = None, **parameters: Value) -> ex.RunRequest:
        """The StartPipelineExecution request for `dataset` (s3:// URI or a dataset name) with any
        parameter (`epochs=50`, `model_variant="s"`...), every value checked, the dataset's data.yaml
        found and its version pinned (as the trigger does). Starts nothing."""
        request = ex.plan_run(self.aws.pipeline_name(), dataset, parameters, bucket=self.aws.bucket,
                              display_name=display_name)
        version = ex.check_dataset(self.aws.client("s3"), str(request.parameters["DatasetS3Uri"]))
        request.parameters.setdefault("DatasetVersion", version)
        return request

    def run(self, dataset: str, *, display_name: str | None = None, dry_run: bool = False,
            **parameters: Value) -> str | dict[str, Any]:
        """Start the pipeline (see `plan_run`): the execution ARN, or with `dry_run` what would
        start (every effective parameter value and the API request)."""
        request = self.plan_run(dataset, display_name=display_name, **parameters)
        if dry_run:
            return {**request.to_dict(ex.pipeline_defaults(self._sm, request.pipeline)),
                    "api_request": request.api_request()}
        return self.start(request)

    def start(self, request: ex.RunRequest) -> str:
        """StartPipelineExecution for a planned request: the execution ARN."""
        return ex.start_run(self._sm, request)

    def executions(self, *, limit: int = 20) -> list[dict[str, Any]]:
        return ex.list_executions(self._sm, self.aws.pipeline_name(), limit=limit)

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

    def doctor(self, *, instance_type: str | None = None) -> list[Any]:
        """Every readiness check (doctor.Check: name, status ok/warn/fail/skip, detail, fix)."""
        from .doctor import run_checks

        return run_checks(self.aws, instance_type=instance_type)
