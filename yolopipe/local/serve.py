"""`yolopipe local serve`: the local stack, kept running, for the CLI's `--local`.

The emulator listens on 127.0.0.1:5000 (YOLOPIPE_LOCAL_ENDPOINT), the stack is created and the
pipeline deployed as in `local run`, and a CloudFormation stack named like the real one carries
the same outputs, so `yolopipe upload ./data --name data --local`, `yolopipe watch latest --local`,
`yolopipe executions list --local`... find the bucket and the pipeline as they would on AWS. S3 event delivery
is emulated the way S3 does it for the template's filter: every new version of a
`datasets/<name>/data.yaml` goes to functions/trigger; every status change of an execution goes
to functions/notifier; the Slack messages and emails are printed; finished executions are
copied to runs/<execution>/.
"""

from __future__ import annotations

import json
import queue
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolopipe_shared import parameters
from yolopipe_shared.layout import TERMINAL_STATUSES

from . import sinks
from .deployment import STACK_PROPERTIES, deploy_pipeline, job_env, process_env
from .emulator import Emulator
from .events import route_custom_events, s3_marker_event, take_routed_events
from .lambdas import InvocationFailed, invoke
from .results import LocalRunResult, collect, save_execution, show
from .scheduler import LocalExecutor
from .stack import LocalStack, create_stack, function_spec
from .weights_choice import choose_weights

Echo = Callable[[str], None]
DEFAULT_PORT = 5000


def _stack_outputs(stack: LocalStack, pipeline_arn: str) -> dict[str, str]:
    """The deployed stack's outputs (template.yaml's Outputs), for the CLI to discover."""
    return {
        "DatasetsBucketName": stack.bucket,
        "DatasetsUri": f"s3://{stack.bucket}/datasets/",
        "PipelineName": stack.pipeline_name,
        "PipelineArn": pipeline_arn,
        "NotificationTopicArn": stack.topic_arn,
        "SlackWebhookSecretArn": stack.secret_arn,
        "ModelPackageGroupName": stack.model_package_group,
        "IdempotencyTableName": stack.table,
    }


def _publish_outputs(cloudformation: Any, stack_name: str, outputs: dict[str, str]) -> None:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "yolopipe local mode: the stack's outputs (the resources live in the emulator)",
        "Resources": {"LocalStack": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with warnings.catch_warnings():  # moto says it does not model the placeholder resource: fine
        warnings.simplefilter("ignore")
        cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))


class LocalServer:
    """The emulator, the stack and the event plumbing, until `stop()`."""

    def __init__(self, *, port: int = DEFAULT_PORT, stack_name: str = "yolopipe", output_dir: str | Path = "runs",
                 slack_webhook_url: str | None = None, min_map50_95: float | None = None,
                 echo: Echo | None = print, poll_s: float = 1.0) -> None:
        self.port, self.stack_name, self.output_dir = port, stack_name, Path(output_dir)
        self.slack_webhook_url, self.poll_s = slack_webhook_url, poll_s
        self.say: Echo = echo or (lambda _: None)
        given = {} if min_map50_95 is None else {"MinMap50_95": min_map50_95}
        self.stack_parameters = {k: v for k, v in parameters.resolve(given).items() if k in STACK_PROPERTIES}
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.finished: list[LocalRunResult] = []
        self.emulator = Emulator(port=port)

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    def serve_forever(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="yolopipe-serve-"))
        receiver = sinks.SlackReceiver() if not self.slack_webhook_url else None
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        started = time.perf_counter()

        def log(text: str) -> None:
            self.say(f"[{time.perf_counter() - started:7.1f}s] {text}")

        try:
            self.emulator.start()
            if receiver is not None:
                receiver.start()
            clients = {s: self.emulator.client(s) for s in
                       ("s3", "dynamodb", "sns", "sqs", "secretsmanager", "sagemaker", "cloudformation", "events")}
            stack = create_stack(clients, region=self.emulator.region,
                                 slack_webhook_url=self.slack_webhook_url or (receiver.url if receiver else ""))
            executor = LocalExecutor(self.emulator.client("s3"), self.emulator.client("sagemaker"), work / "jobs",
                                     region=self.emulator.region, on_event=events.put,
                                     on_progress=lambda e, text: log(f"{e.display_name}: {text}"),
                                     extra_env={**job_env(work), **self.emulator.environment()},
                                     logs=self.emulator.client("logs"))
            self.emulator.attach(executor)
            if "Weights" not in self.stack_parameters:  # the official weights when at hand, else scratch (said)
                self.stack_parameters["Weights"] = choose_weights(
                    clients["s3"], stack.bucket, str(parameters.BY_NAME["ModelVariant"].default), log)
            deploy_pipeline(self.emulator, stack, work, self.stack_parameters)
            pipeline_arn = clients["sagemaker"].describe_pipeline(PipelineName=stack.pipeline_name)["PipelineArn"]
            _publish_outputs(clients["cloudformation"], self.stack_name, _stack_outputs(stack, pipeline_arn))
            trigger = function_spec(stack.template, "TriggerFunction", "functions/trigger")
            notifier = function_spec(stack.template, "NotifierFunction", "functions/notifier")
            base_env = process_env(self.emulator)
            inbox = sinks.Inbox(clients["sqs"], stack.email_queue_url)
            routed = route_custom_events(clients["events"], clients["sqs"], stack.template, "NotifierFunction",
                                         stack.refs(), f"yolopipe-{self.stack_name}")
            log(f"local stack '{self.stack_name}' ready on {self.endpoint_url}: bucket {stack.bucket}, "
                f"pipeline {stack.pipeline_name}")
            self.say(f"  export YOLOPIPE_LOCAL_ENDPOINT={self.endpoint_url}")
            self.say("  `yolopipe upload ./my-dataset --name my-dataset --local`  data.yaml last: training starts")
            self.say("  `yolopipe executions list --local`  then watch, report, stop... with --local")
            self.ready.set()
            seen: set[tuple[str, str]] = set()
            while not self.stopped.is_set():
                for key, version in self._new_markers(clients["s3"], stack.bucket, seen):
                    log(f"s3:ObjectCreated s3://{stack.bucket}/{key} -> functions/trigger")
                    event = s3_marker_event(clients["s3"], stack.bucket, key, self.emulator.region, version=version)
                    try:
                        outcome = invoke(trigger, event, {**base_env, **stack.environment(trigger)},
                                         log_file=work / "logs" / "trigger.log").result
                        for item in (outcome or {}).get("outcomes") or []:
                            log(f"trigger: {item.get('outcome')} {item.get('dataset', '')} "
                                f"{item.get('execution_arn', '')}".rstrip())
                    except InvocationFailed as exc:
                        log(str(exc))
                    show(self.say, [], inbox.take())
                for event in take_routed_events(clients["sqs"], routed):  # EventBridge rules -> the notifier
                    try:
                        invoke(notifier, event, {**base_env, **stack.environment(notifier)},
                               log_file=work / "logs" / "notifier.log")
                    except InvocationFailed as exc:
                        log(f"notifier failed on {event.get('detail-type')}: {exc}")
                    log(f"{event.get('detail-type')} -> functions/notifier")
                    show(self.say, receiver.take() if receiver else [], inbox.take())
                self._deliver(events, executor, notifier, {**base_env, **stack.environment(notifier)},
                              receiver, inbox, clients, stack, work, log)
                self.stopped.wait(self.poll_s)
        finally:
            self.ready.set()
            if receiver is not None:
                receiver.stop()
            self.emulator.stop()
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _new_markers(s3: Any, bucket: str, seen: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """New versions of datasets/<name>/data.yaml, oldest first (what the S3 notification delivers)."""
        found: list[tuple[Any, str, str]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="datasets/"):
            for item in page.get("Versions") or []:
                ident = (item["Key"], str(item.get("VersionId")))
                if item["Key"].endswith("data.yaml") and ident not in seen:
                    seen.add(ident)
                    found.append((item["LastModified"], *ident))
        return [(key, version) for _, key, version in sorted(found)]

    def _deliver(self, events: queue.Queue[dict[str, Any]], executor: LocalExecutor, notifier: Any,
                 env: dict[str, str], receiver: sinks.SlackReceiver | None, inbox: sinks.Inbox,
                 clients: dict[str, Any], stack: LocalStack, work: Path, log: Echo) -> None:
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return
            status = event["detail"]["currentPipelineExecutionStatus"]
            arn = event["detail"]["pipelineExecutionArn"]
            try:
                invoke(notifier, event, env, log_file=work / "logs" / "notifier.log")
            except InvocationFailed as exc:
                log(f"notifier failed on {status}: {exc}")
            log(f"execution {arn.rsplit('/', 1)[-1]} {status}")
            show(self.say, receiver.take() if receiver else [], inbox.take())
            execution = executor.get(arn)
            if status in TERMINAL_STATUSES and execution is not None:
                execution.finished.wait(5)
                result = LocalRunResult(dataset=execution.display_name, dataset_uri="", outcome="started",
                                        status=execution.status, execution_arn=arn)
                collect(result, execution, clients, stack)
                result.output_dir = save_execution(self.output_dir, result, execution, executor, clients, work)
                self.finished.append(result)
                log(f"artifacts of {execution.display_name} in {result.output_dir}/")

    def stop(self) -> None:
        self.stopped.set()


def main(argv: list[str]) -> int:
    """`yolopipe local serve [--port 5000] [--stack yolopipe] [--min-map50-95 X] [--output runs]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="yolopipe local serve",
                                     description="Keep the local stack running for the CLI's --local.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--stack", default="yolopipe", help="stack name the CLI looks up (default: yolopipe)")
    parser.add_argument("--min-map50-95", type=float, help="the stack's quality gate (default 0.5)")
    parser.add_argument("--output", default="runs", help="where runs/<execution>/ goes")
    args = parser.parse_args(argv)
    server = LocalServer(port=args.port, stack_name=args.stack, min_map50_95=args.min_map50_95,
                         output_dir=args.output)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); pick another with --port N "
              f"and export YOLOPIPE_LOCAL_ENDPOINT=http://127.0.0.1:N")
        return 1
    return 0
