"""Benchmark 2: the trigger under a storm of S3 events, against moto.

GIVEN one dataset of N images (+ labels) already in the bucket, and N+1 S3 records for it (every
image and the data.yaml marker) plus R redeliveries of the marker, in random order
WHEN 8 threads hand the records to the handler, one record per invocation (as S3 delivers them)
THEN exactly one pipeline execution starts; the table shows handler time per record (the marker
max is the one delivery that validated the dataset) and the
ratio against the trigger a user writes from the S3 -> Lambda tutorial (start the pipeline for
every data.yaml record, no validation, no idempotency), run on the same records.

    .venv/bin/python bench/trigger_storm.py            # 9,999 images + marker + 100 redeliveries
    .venv/bin/python bench/trigger_storm.py --quick    # 999 images + marker + 20 redeliveries
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import queue
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

REPO = Path(__file__).resolve().parents[1]
os.environ.update({
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "1",
})
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
import yaml  # noqa: E402
from moto import mock_aws  # noqa: E402

BUCKET = "yolopipe-bench-123456789012-abcd1234"
PIPELINE = "yolopipe-bench"
DATASET = "storm"
THREADS = 8
EVENT_TEMPLATE = REPO / "events" / "s3_marker_put.json"


class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


class Context:
    function_name = "yolopipe-bench-trigger"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:yolopipe-bench-trigger"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def create_stack() -> dict[str, Any]:
    """Bucket, pipeline, idempotency table (key schema from template.yaml) and topic, in moto."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn="arn:aws:iam::123456789012:role/bench",
                              PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
                              ClientRequestToken=uuid.uuid4().hex)
    props = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)[  # noqa: S506 (SafeLoader)
        "Resources"]["IdempotencyTable"]["Properties"]
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(TableName="bench-idempotency", KeySchema=props["KeySchema"],
                          AttributeDefinitions=props["AttributeDefinitions"], BillingMode="PAY_PER_REQUEST")
    topic = boto3.client("sns").create_topic(Name="bench")["TopicArn"]
    os.environ.update({"PIPELINE_NAME": PIPELINE, "IDEMPOTENCY_TABLE": "bench-idempotency", "NOTIFY_TOPIC_ARN": topic})
    return {"s3": s3, "sagemaker": sagemaker}


def upload_dataset(s3: Any, images: int) -> tuple[list[str], str]:
    """N tiny images with labels (the validator lists and samples labels; it never decodes images)."""
    prefix = f"datasets/{DATASET}/"
    keys = []
    n_val = max(1, images // 10)
    for i in range(images):
        split = "val" if i < n_val else "train"
        keys.append(f"{prefix}images/{split}/img_{i:05d}.jpg")
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=b"\xff\xd8\xff\xe0 bench image")
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}labels/{split}/img_{i:05d}.txt",
                      Body=f"{i % 3} 0.5 0.5 0.2 0.2\n".encode())
    data_yaml = "path: .\ntrain: images/train\nval: images/val\nnames: [square, disc, bar]\n"
    version = s3.put_object(Bucket=BUCKET, Key=f"{prefix}data.yaml", Body=data_yaml.encode())["VersionId"]
    return keys, version


def events(image_keys: list[str], marker_version: str, redeliveries: int, seed: int = 0) -> list[dict[str, Any]]:
    """One single-record S3 event per object, plus the marker's redeliveries, shuffled."""
    template = json.loads(EVENT_TEMPLATE.read_text())

    def event(key: str, version: str) -> dict[str, Any]:
        e = copy.deepcopy(template)
        record = e["Records"][0]
        record["s3"]["bucket"]["name"] = BUCKET
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
        record["s3"]["object"].update({"key": quote_plus(key, safe="/"), "versionId": version})
        record["responseElements"]["x-amz-request-id"] = uuid.uuid4().hex[:16].upper()
        return e

    marker = f"datasets/{DATASET}/data.yaml"
    out = [event(k, uuid.uuid4().hex) for k in image_keys]
    out += [event(marker, marker_version) for _ in range(1 + redeliveries)]
    random.Random(seed).shuffle(out)
    return out


def load_trigger() -> Callable[[dict[str, Any], Any], Any]:
    spec = importlib.util.spec_from_file_location("bench_trigger_app", REPO / "functions" / "trigger" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler  # type: ignore[no-any-return]


def tutorial_trigger() -> Callable[[dict[str, Any], Any], Any]:
    """The trigger a user writes from the S3 -> Lambda tutorial: every data.yaml starts a run."""
    from urllib.parse import unquote_plus

    sagemaker = boto3.client("sagemaker")

    def handler(event: dict[str, Any], context: Any) -> None:
        for record in event["Records"]:
            key = unquote_plus(record["s3"]["object"]["key"])
            if key.endswith("data.yaml"):
                uri = f"s3://{record['s3']['bucket']['name']}/{key.rsplit('/', 1)[0]}/"
                # No token of its own: botocore fills in a fresh random one on every call.
                sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=uuid.uuid4().hex,
                                                   PipelineParameters=[{"Name": "DatasetS3Uri", "Value": uri}])

    return handler


def storm(handler: Callable[[dict[str, Any], Any], Any], batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliver every event from THREADS threads; per-invocation latency by record kind."""
    work: queue.Queue[dict[str, Any]] = queue.Queue()
    for e in batch:
        work.put(e)
    timings: dict[str, list[float]] = {"image": [], "marker": []}
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        context = Context()
        while True:
            try:
                e = work.get_nowait()
            except queue.Empty:
                return
            kind = "marker" if e["Records"][0]["s3"]["object"]["key"].endswith("data.yaml") else "image"
            t = time.perf_counter()
            try:
                handler(e, context)
            except Exception as error:  # noqa: BLE001 - counted: a failed invocation is a retry in Lambda
                with lock:
                    errors.append(type(error).__name__)
            with lock:
                timings[kind].append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall": time.perf_counter() - start, "timings": timings, "errors": errors}


def executions() -> int:
    sagemaker = boto3.client("sagemaker")
    return len(sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"])


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="999 images + 20 redeliveries (< 1 minute)")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--redeliveries", type=int, default=None)
    args = parser.parse_args(argv)
    images = args.images or (999 if args.quick else 9_999)
    redeliveries = args.redeliveries if args.redeliveries is not None else (20 if args.quick else 100)

    results = {}
    for name in ("tutorial trigger (no validation, no idempotency)", "yolopipe trigger"):
        with mock_aws():
            clients = create_stack()
            t = time.perf_counter()
            keys, version = upload_dataset(clients["s3"], images)
            setup = time.perf_counter() - t
            batch = events(keys, version, redeliveries)
            handler = load_trigger() if name == "yolopipe trigger" else tutorial_trigger()
            run = storm(handler, batch)
            run["executions"] = executions()
            run["records"] = len(batch)
            run["setup"] = setup
            results[name] = run

    print(f"trigger storm: {images:,} image records + 1 marker + {redeliveries} redeliveries, {THREADS} threads, "
          f"moto in-process; Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{'trigger':<50} {'records':>8} {'executions':>10} {'errors':>6} {'ms/record':>9} "
          f"{'image p50':>9} {'marker p50':>10} {'marker p99':>10} {'marker max':>10} {'wall s':>7}")
    for name, run in results.items():
        all_times = run["timings"]["image"] + run["timings"]["marker"]
        print(f"{name:<50} {run['records']:>8,} {run['executions']:>10} {len(run['errors']):>6} "
              f"{statistics.fmean(all_times) * 1000:>9.3f} {_ms(run['timings']['image'], 0.5):>9.3f} "
              f"{_ms(run['timings']['marker'], 0.5):>10.1f} {_ms(run['timings']['marker'], 0.99):>10.1f} "
              f"{max(run['timings']['marker'], default=0) * 1000:>10.1f} "
              f"{run['wall']:>7.1f}")
    ours = results["yolopipe trigger"]
    naive = results["tutorial trigger (no validation, no idempotency)"]
    ratio = naive["executions"] / max(1, ours["executions"])
    verdict = "yes" if ours["executions"] == 1 and not ours["errors"] else "NO"
    print(f"executions started: yolopipe {ours['executions']} (must be exactly 1: {verdict}) vs tutorial "
          f"{naive['executions']} -> {ratio:.0f}x fewer paid pipeline runs for the same storm")
    return 0 if verdict == "yes" else 1


if __name__ == "__main__":
    raise SystemExit(main())
