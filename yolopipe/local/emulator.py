"""The AWS emulator of local mode: moto's server on 127.0.0.1, plus what moto lacks for Pipelines.

moto serves S3, DynamoDB, SNS, SQS, Secrets Manager and SageMaker's CreatePipeline /
DescribePipeline / CreateModelPackage... A small WSGI middleware in front of it answers the
SageMaker Pipelines execution calls that moto gets wrong (it ignores ClientRequestToken and
marks every execution Succeeded at once) or lacks (steps, stop), from the local executor:

  StartPipelineExecution, DescribePipelineExecution, ListPipelineExecutionSteps,
  StopPipelineExecution, ListPipelineExecutions, ListPipelineParametersForExecution,
  DescribePipelineDefinitionForExecution

and the Price List's GetProducts, which moto lacks (an empty list: the cost lines use their table).

Everything else goes to moto unchanged. Clients reach it through `AWS_ENDPOINT_URL`, so the
functions and the CLI run their normal code against it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scheduler import LocalExecutor

ACCOUNT_ID = "123456789012"
#: Where `yolopipe local serve` listens (moto's own default port); the CLI's --local reads it.
DEFAULT_ENDPOINT = "http://127.0.0.1:5000"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class ApiError(Exception):
    """An error answered in the JSON protocol's shape (botocore reads `__type`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class PassToMoto(Exception):
    """Not ours after all: let moto answer."""


class PipelinesMiddleware:
    """WSGI middleware: answers the Pipelines execution actions, passes the rest to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.executor: LocalExecutor | None = None
        self.handlers: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "StartPipelineExecution": self.start_pipeline_execution,
            "DescribePipelineExecution": self.describe_pipeline_execution,
            "ListPipelineExecutionSteps": self.list_pipeline_execution_steps,
            "StopPipelineExecution": self.stop_pipeline_execution,
            "ListPipelineExecutions": self.list_pipeline_executions,
            "ListPipelineParametersForExecution": self.list_pipeline_parameters_for_execution,
            "DescribePipelineDefinitionForExecution": self.describe_pipeline_definition_for_execution,
            "DescribeTrainingJob": self.describe_job("TrainingJobName"),
            "DescribeProcessingJob": self.describe_job("ProcessingJobName"),
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, action = target.partition(".")
        if service == "SageMaker" and action in ("CreatePipeline", "UpdatePipeline"):
            refused = self._strict_refusal(environ, action)
            if refused is not None:
                return refused(start_response)
        if service == "AWSPriceListService" and action == "GetProducts":
            # moto has no Price List: answer as a region without SageMaker prices does (an empty
            # list), so the cost lines fall back to their dated table.
            return self._json(start_response, "200 OK", {"FormatVersion": "aws_v1", "PriceList": []})
        if service != "SageMaker" or action not in self.handlers:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        match = _REGION_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(1) if match else "us-east-1"
        try:
            request = json.loads(body or b"{}")
            payload = self.handlers[action](request, region)
            status, text = "200 OK", json.dumps(payload, default=_json_default)
        except PassToMoto:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        except ApiError as exc:
            status = f"{exc.status} {'Bad Request' if exc.status == 400 else 'Error'}"
            text = json.dumps({"__type": exc.code, "message": exc.message})
        except ValueError as exc:
            status, text = "400 Bad Request", json.dumps({"__type": "ValidationException", "message": str(exc)})
        return self._json(start_response, status, text)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _json(start_response: Callable[..., Any], status: str, payload: str | dict[str, Any]) -> list[bytes]:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.1"),
                                ("Content-Length", str(len(data))),
                                ("x-amzn-RequestId", "local")])
        return [data]

    @staticmethod
    def _strict_refusal(environ: dict[str, Any], action: str) -> Callable[[Callable[..., Any]], list[bytes]] | None:
        """AWS's checks on the request (steps included), for clients made without strict.install()."""
        from moto.s3.models import s3_backends

        from .strict import json_request_refusal

        def fetch(location: Any) -> str:
            key = s3_backends[ACCOUNT_ID]["aws"].get_object(location["Bucket"], location["ObjectKey"],
                                                           location.get("VersionId"))
            return key.value.decode("utf-8")  # type: ignore[union-attr]

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        match = _REGION_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
        error = json_request_refusal("sagemaker", action, body, region=match.group(1) if match else "us-east-1",
                                     fetch_definition=fetch)
        if error is None:
            return None
        data = json.dumps(error).encode()

        def respond(start_response: Callable[..., Any]) -> list[bytes]:
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                               ("Content-Length", str(len(data))), ("x-amzn-RequestId", "local")])
            return [data]

        return respond

    def _executor(self) -> LocalExecutor:
        if self.executor is None:
            raise ApiError("InternalFailure", "the local executor is not attached", 500)
        return self.executor

    @staticmethod
    def _pipeline(name_or_arn: str, region: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        name = name_or_arn.split(":pipeline/")[-1]
        pipeline = sagemaker_backends[ACCOUNT_ID][region].pipelines.get(name)
        if pipeline is None:
            raise ApiError("ResourceNotFound", f"Pipeline '{name_or_arn}' does not exist.")
        return pipeline

    def _execution(self, request: dict[str, Any]) -> Any:
        arn = request.get("PipelineExecutionArn", "")
        execution = self._executor().get(arn)
        if execution is None:
            raise ApiError("ResourceNotFound", f"Pipeline execution '{arn}' does not exist.")
        return execution

    # --- actions ---------------------------------------------------------------------------

    def describe_job(self, name_key: str) -> Callable[[dict[str, Any], str], dict[str, Any]]:
        """Describe*Job: the jobs the executor ran; any other job is moto's."""

        def describe(request: dict[str, Any], region: str) -> dict[str, Any]:
            job = self.executor.jobs.get(str(request.get(name_key))) if self.executor else None
            if job is None:
                raise PassToMoto()
            return dict(job)

        return describe

    def start_pipeline_execution(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        from .scheduler import ExecutionValidationError

        pipeline = self._pipeline(request.get("PipelineName", ""), region)
        token = request.get("ClientRequestToken")
        if token is not None and not 32 <= len(token) <= 128:
            raise ApiError("ValidationException", "ClientRequestToken must be 32 to 128 characters long")
        name = request.get("PipelineExecutionDisplayName")
        if name is not None and not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}", name):
            raise ApiError("ValidationException",
                           f"PipelineExecutionDisplayName {name!r} must match [a-zA-Z0-9](-*[a-zA-Z0-9]){{0,81}}")
        try:
            execution = self._executor().start(
                pipeline_name=pipeline.pipeline_name,
                pipeline_arn=pipeline.arn,
                definition=pipeline.pipeline_definition,
                parameters=request.get("PipelineParameters") or [],
                display_name=name,
                description=request.get("PipelineExecutionDescription"),
                client_request_token=token,
            )
        except ExecutionValidationError as exc:
            raise ApiError("ValidationException", str(exc)) from exc
        return {"PipelineExecutionArn": execution.arn}

    def describe_pipeline_execution(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        return dict(self._execution(request).describe())

    def list_pipeline_execution_steps(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        execution = self._execution(request)
        steps = [step.to_api() for step in execution.steps]  # most recent first, as SageMaker sorts
        if request.get("SortOrder") == "Ascending":
            steps.reverse()
        return {"PipelineExecutionSteps": steps}

    def stop_pipeline_execution(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        execution = self._execution(request)
        self._executor().stop(execution.arn)
        return {"PipelineExecutionArn": execution.arn}

    def list_pipeline_executions(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        pipeline = self._pipeline(request.get("PipelineName", ""), region)
        executions = self._executor().list_executions(pipeline.pipeline_name)
        if request.get("SortOrder") == "Ascending":
            executions.reverse()
        start = int(request.get("NextToken") or 0)
        size = int(request.get("MaxResults") or 50)
        page = executions[start:start + size]
        response: dict[str, Any] = {"PipelineExecutionSummaries": [e.summary() for e in page]}
        if start + size < len(executions):
            response["NextToken"] = str(start + size)
        return response

    def list_pipeline_parameters_for_execution(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        return {"PipelineParameters": self._execution(request).parameter_list()}

    def describe_pipeline_definition_for_execution(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        execution = self._execution(request)
        return {"PipelineDefinition": json.dumps(execution.definition), "CreationTime": execution.created}


class Emulator:
    """moto's server with the Pipelines middleware, on 127.0.0.1 and a free port.

    moto keeps its state per process: starting an emulator resets it, so one emulator per
    process at a time.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host, self.port, self.region = host, port, region
        self.middleware: PipelinesMiddleware | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        from moto.moto_api import _internal
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from .strict import install

        install()  # this process's clients (runner, serve, executor) refuse what AWS refuses
        _internal.models.moto_api_backend.reset()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.middleware = PipelinesMiddleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, self.middleware, threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()
        return self

    def attach(self, executor: LocalExecutor) -> None:
        assert self.middleware is not None, "start() first"
        self.middleware.executor = executor

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to the emulator (and to nothing else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **FAKE_CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=32),
        )

