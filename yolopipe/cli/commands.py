"""The `yolopipe` commands: each calls the API (yolopipe.client.Yolopipe) and formats what it
returns; nothing here talks to AWS or checks data on its own."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from yolopipe_shared import parameters
from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.layout import TERMINAL_STATUSES
from yolopipe_shared.refusal import Refusal

from .output import (
    EXIT_FAILED,
    EXIT_OK,
    cost_table,
    err,
    fmt_metric,
    fmt_parameter,
    fmt_seconds,
    fmt_usd,
    print_json,
    progress_bar,
    refusal_text,
    table,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..client import Yolopipe

def _client(args: argparse.Namespace) -> Yolopipe:
    """The API for the account/region/stack (or local emulator) the global flags name."""
    from ..aws import Settings
    from ..client import Yolopipe

    return Yolopipe.from_settings(Settings.from_env(
        profile=args.profile, region=args.region, endpoint_url=args.endpoint_url, local=args.local,
        stack=args.stack, bucket=args.bucket, pipeline=args.pipeline,
    ))





def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import summary

    checks = _client(args).doctor(instance_type=args.instance_type)
    result = summary(checks)
    if args.json:
        print_json(result)
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
        for check in checks:
            print(f"[{marks[check.status]}] {check.name}: {check.detail}")
            if check.status == "fail" and check.fix:
                print(f"       fix: {check.fix}")
            if check.request_command:
                print(f"       run: {check.request_command}")
        print("ready to train" if result["ok"] else "not ready: fix the FAIL lines above")
    return EXIT_OK if result["ok"] else EXIT_FAILED


def cmd_dataset_validate(args: argparse.Namespace) -> int:
    from ..client import Yolopipe

    # The trigger's checks, yolopipe.yaml included. Locally every label is read (20,000 in well
    # under a second); --sample trades that for speed.
    # Plus what only a local copy shows: every image decodes, every label file has its image.
    report = Yolopipe.validate(args.path, label_sample=args.sample, images=True)
    if args.json:
        print_json({
            "ok": report.ok, "location": report.location, "problems": [str(p) for p in report.problems],
            "warnings": [str(w) for w in report.warnings], "names": report.names,
            "images_per_split": report.images_per_split, "labels_checked": report.labels_checked,
            "images_decoded": report.images_decoded,
            "images_without_labels_per_split": report.missing_labels_per_split,
        })
    else:
        print(report.summary(limit=args.limit))
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_dataset_convert(args: argparse.Namespace) -> int:
    from ..client import Yolopipe

    names = [name.strip() for name in args.names.split(",") if name.strip()] if args.names else None
    result = Yolopipe.convert(args.format, args.src, args.dst, val_fraction=args.val_fraction, seed=args.seed,
                     names=names, images_dir=args.images)
    if args.json:
        print_json({"root": str(result.root), "names": result.names, "counts": result.counts,
                     "skipped": result.skipped})
    else:
        counts = ", ".join(f"{split} {n}" for split, n in result.counts.items())
        print(f"wrote {result.root} ({counts} images; classes: {', '.join(result.names)})")
        for what, n in result.skipped.items():
            print(f"skipped {n}: {what}")
        print(f"next: `yolopipe dataset validate {result.root}`, then `yolopipe upload {result.root} --name NAME`")
    return EXIT_OK





def cmd_upload(args: argparse.Namespace) -> int:
    client = _client(args)
    if not args.no_validate:
        report = client.validate(args.path, limits=client.stack_limits())
        report.raise_if_rejected()
        if not args.json:
            counts = ", ".join(f"{split} {n:,}" for split, n in report.images_per_split.items())
            print(f"validated {args.path}: {counts} images, classes: {', '.join(report.names)}")
    plan = client.plan_upload(args.path, args.name, workers=args.workers)
    s3_uri = f"s3://{client.aws.bucket()}/{plan.prefix}"
    if not args.json:
        print(f"{s3_uri}: {len(plan.to_send):,} files to send "
              f"({plan.bytes_to_send / 1e6:.1f} MB), {len(plan.up_to_date):,} already there")
        for warning in plan.warnings:
            print(f"warning: {warning}")
    if args.dry_run:
        if args.json:
            print_json({"s3_uri": s3_uri, "to_send": len(plan.to_send),
                        "up_to_date": len(plan.up_to_date), "stale": len(plan.stale_keys)})
        return EXIT_OK
    bar = progress_bar(len(plan.to_send) + (1 if plan.marker and not args.no_trigger else 0),
                       enabled=not args.json and not args.quiet)
    try:
        result = client.upload(args.path, args.name, trigger=not args.no_trigger, delete_stale=args.delete,
                               workers=args.workers, validate=False, plan=plan,
                               progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    if args.json:
        print_json(result.to_dict())
        return EXIT_OK
    deleted = f", {result.deleted:,} stale objects deleted" if result.deleted else ""
    print(f"uploaded {result.uploaded:,} files ({result.bytes_sent / 1e6:.1f} MB) in {result.seconds:.1f}s, "
          f"{result.skipped:,} already there{deleted}")
    if plan.stale_keys and not args.delete:
        print(f"note: {len(plan.stale_keys):,} objects under {result.s3_uri} are not in {args.path} "
              "(training would see them): re-run with --delete to remove them")
    print(result.s3_uri)
    if result.marker_written:
        print(f"data.yaml written last: the trigger validates the dataset and starts pipeline "
              f"{client.aws.pipeline_name()}.")
        if args.watch:
            return _watch_triggered(args, client, result)
        print("next: `yolopipe watch latest` (or `yolopipe executions list`; `upload --watch` waits for it)")
    elif args.no_trigger:
        # Not `yolopipe run` here: without data.yaml in S3 it refuses the dataset.
        print(f"data.yaml not uploaded (--no-trigger): nothing starts. To train later: `yolopipe upload {args.path} "
              f"--name {args.name}` (sends only data.yaml, which starts training)")
    else:
        print(f"nothing changed since the last upload, so nothing was triggered; to train again: "
              f"`yolopipe run --dataset {result.s3_uri}`")
    return EXIT_OK


def _watch_triggered(args: argparse.Namespace, client: Yolopipe, result: Any) -> int:
    from datetime import UTC, datetime

    print("waiting for the trigger to start it...", flush=True)
    arn = client.wait_for_trigger(result.s3_uri, since=result.marker_time or datetime.now(UTC),
                                  timeout=args.start_timeout, version=result.marker_version)
    if isinstance(arn, Refusal):
        return _show_refusal(args, arn)
    if arn is None:
        err(f"the trigger neither started an execution nor refused the dataset within {args.start_timeout:g}s: "
            "it is slow or failed (its dead-letter queue says why); check `yolopipe executions list`")
        return EXIT_FAILED
    print(f"started {arn}")
    return _watch(args, client, arn)


def cmd_pipelines_list(args: argparse.Namespace) -> int:
    rows = _client(args).pipelines()
    if args.json:
        print_json(rows)
    elif not rows:
        print("no pipelines in this account/region: deploy the stack with `sam deploy --guided`")
    else:
        print(table([(r["name"], r["created"], r["last_execution"] or "never") for r in rows],
                     ("PIPELINE", "CREATED", "LAST EXECUTION")))
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    from yolopipe_shared.errors import ParameterError

    from .parser import dest

    given = {spec.name: getattr(args, dest(spec)) for spec in parameters.PARAMETERS
             if spec.name not in ("DatasetS3Uri", "DatasetName") and getattr(args, dest(spec), None) is not None}
    for item in getattr(args, "settings", None) or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ParameterError(f"--set {item!r}: write KEY=VALUE, e.g. --set patience=20")
        if key.strip() in given:
            raise ParameterError(f"{key.strip()} is given twice")
        given[key.strip()] = value
    return given


def cmd_run(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    # every value checked before any client exists (Weights may name an execution: the API resolves it)
    parameters.resolve({k: v for k, v in overrides.items() if k != "Weights"})
    client = _client(args)
    if args.dry_run:
        planned = client.run(args.dataset, display_name=args.display_name, dry_run=True, lower_gate=args.lower_gate,
                             **overrides)
        assert isinstance(planned, dict)
        if args.json:
            print_json(planned)
        else:
            print(f"would start pipeline {planned['pipeline']} as {planned['display_name']} with:")
            print(table([(name, fmt_parameter(name, value), "" if name in planned["parameters"] else "(default)")
                         for name, value in planned["effective_parameters"].items()], ("PARAMETER", "VALUE", "")))
            for warning in planned["warnings"]:
                print(f"warning: {warning}")
        return EXIT_OK
    request = client.plan_run(args.dataset, display_name=args.display_name, lower_gate=args.lower_gate, **overrides)
    for warning in request.warnings:
        err(f"warning: {warning}")
    arn = client.start(request)
    if args.json and not args.watch:
        print_json({"execution_arn": arn, **request.to_dict()})
        return EXIT_OK
    print(f"started {arn}")
    if args.watch:
        return _watch(args, client, arn)
    print(f"next: `yolopipe watch {arn.rsplit('/', 1)[-1]}`")
    return EXIT_OK


def cmd_weights_stage(args: argparse.Namespace) -> int:
    staged = _client(args).stage_weights(args.variant)
    if args.json:
        print_json(staged)
    else:
        sent = "uploaded" if staged["uploaded"] else "already there"
        print(f"{staged['local_path']} -> {staged['uri']} ({staged['bytes'] / 1e6:.1f} MB, {sent})")
        print(staged["weights"])
        print(f"next: yolopipe run --dataset NAME --weights {staged['uri']}   (or `weights: {staged['uri']}` "
              "in yolopipe.yaml)")
    return EXIT_OK


def cmd_executions_list(args: argparse.Namespace) -> int:
    client = _client(args)
    rows = client.executions(limit=args.limit)
    if args.json:
        print_json(rows)
    elif not rows:
        print(f"pipeline {client.aws.pipeline_name()} has no executions yet: `yolopipe upload PATH --name NAME` "
              "or `yolopipe run --dataset NAME`")
    else:
        print(table([(r["id"] or "-", r["status"], r["started"], r["display_name"], r["failure_reason"][:60])
                      for r in rows], ("EXECUTION", "STATUS", "STARTED", "DISPLAY NAME", "REASON")))
    return EXIT_OK





def cmd_watch(args: argparse.Namespace) -> int:
    client = _client(args)
    refusal = client.latest_refusal() if args.execution == "latest" else None
    if refusal is not None:  # the newest upload started nothing: say why
        return _show_refusal(args, refusal)
    return _watch(args, client, client.resolve(args.execution))


def _show_refusal(args: argparse.Namespace, refusal: Refusal) -> int:
    if args.json:
        print_json({"status": "Refused", **refusal.to_dict()})
    else:
        print(refusal_text(refusal))
    return EXIT_FAILED


def _watch(args: argparse.Namespace, client: Yolopipe, arn: str) -> int:
    import sys

    from .live import WatchView

    with WatchView(sys.stdout, json_lines=args.json) as view:
        final = client.watch(arn, on_update=view, interval=args.interval, timeout=args.timeout)
    if not args.json:
        print(f"{final.status} after {fmt_seconds(final.elapsed_s)}"
              + (f": {final.failure_reason}" if final.failure_reason else ""))
        if final.status == "Succeeded":
            print(f"next: `yolopipe report {arn.rsplit('/', 1)[-1]}`")
    return EXIT_OK if final.status == "Succeeded" else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    data = _client(args).report(args.execution)
    if args.json:
        print_json(data)
        return EXIT_OK
    print(f"{data['display_name'] or data['arn']}  [{data['status']}]  pipeline {data['pipeline']}, "
          f"{fmt_seconds(data['elapsed_s'])}")
    print(f"  {data['arn']}")
    if data["failure_reason"]:
        print(f"  failure: {data['failure_reason']}")
    for warning in data.get("warnings") or []:
        print(f"  warning: {warning}")
    print("\nparameters")
    print(table([(name, fmt_parameter(name, value)) for name, value in data["parameters"].items()],
                 ("NAME", "VALUE")))
    if data["steps"]:
        from .live import step_elapsed

        print("\nsteps")
        print(table([(s["name"], s["type"], s["status"], step_elapsed(s), s["failure_reason"][:70])
                      for s in data["steps"]], ("STEP", "TYPE", "STATUS", "ELAPSED", "REASON")))
    _print_jobs(data)
    if data["metrics"]:
        from yolopipe_shared.evaluation import METRICS

        print(f"\nmetrics ({data['evaluation_split'] or 'evaluation'} split)")
        if data.get("verdict"):
            print(f"  gate: {data['verdict']}")
        print(table([(METRICS.get(k, k), fmt_metric(v)) for k, v in data["metrics"].items()], ("METRIC", "VALUE")))
    if data["per_class"]:
        print("\nper class")
        print(table([(c.get("name"), fmt_metric(c.get("map50_95")), fmt_metric(c.get("map50")),
                       fmt_metric(c.get("precision")), fmt_metric(c.get("recall")), c.get("instances"))
                      for c in data["per_class"]],
                     ("CLASS", "mAP50-95", "mAP50", "PRECISION", "RECALL", "INSTANCES")))
    if data.get("mlflow"):
        from yolopipe_shared.evaluation import mlflow_line

        print(f"\n{mlflow_line({'mlflow': data['mlflow']})}")
    if data["model_package"]:
        package = data["model_package"]
        print(f"\nmodel package: {package.get('arn')} ({package.get('approval_status', '')})")
    if data["artifacts"]:
        print("\nartifacts")
        print(table(list(data["artifacts"].items()), ("WHAT", "URI")))
    if data["cost"]["jobs"]:
        print("\ncost (estimate: SageMaker jobs only)")
        print(cost_table(data["cost"]))
    return EXIT_OK


def _print_jobs(data: dict[str, Any]) -> None:
    """Each step's job with its console page and log streams, and the training in numbers."""
    from .live import training_line

    for job in data.get("jobs") or []:
        reused = f", reused from execution {job['reused_from']}" if job.get("reused_from") else ""
        print(f"\n{job['step']} job: {job['job_name']}{reused}")
        print(f"  console: {job['console_url']}")
        print(f"  logs:    {job['logs_url']}")
        print(f"           yolopipe logs {data['arn'].rsplit('/', 1)[-1]} --step {job['step_name']}")
    if data.get("training"):
        print(f"\ntraining: {training_line(data['training'])}")


def cmd_logs(args: argparse.Namespace) -> int:
    import sys

    for line in _client(args).logs(args.execution, step=args.step, follow=args.follow, interval=args.interval):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from yolopipe_shared.evaluation import METRICS

    reports = _client(args).compare(*args.executions)
    if args.json:
        print_json(reports)
        return EXIT_OK
    headers = ["", *[r["arn"].rsplit("/", 1)[-1] for r in reports]]
    rows: list[list[Any]] = [["status", *[r["status"] for r in reports]]]
    rows += [[label, *[fmt_metric(r["metrics"].get(name, "")) for r in reports]] for name, label in METRICS.items()]
    names = [name for name in parameters.BY_NAME if len({str(r["parameters"].get(name)) for r in reports}) > 1]
    rows += [[name, *[fmt_parameter(name, r["parameters"].get(name)) for r in reports]] for name in names]
    rows.append(["model package", *[(r["model_package"] or {}).get("approval_status", "-") for r in reports]])
    rows.append(["est. cost", *[fmt_usd(r["cost"]) for r in reports]])
    print(table(rows, headers))
    if len(reports) > 1 and not names:
        print("(same parameters)")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    client = _client(args)
    arn = client.resolve(args.execution)
    status = client.stop(arn)
    if args.json:
        print_json({"execution_arn": arn, "status": status})
    elif status in TERMINAL_STATUSES:
        print(f"{arn} already ended: {status}")
    else:
        print(f"stopping {arn} ({status}); `yolopipe watch {arn.rsplit('/', 1)[-1]}` shows when it has stopped")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    result = _client(args).approve(args.ref, approved=not args.reject)
    if args.json:
        print_json(result)
    else:
        print(f"model package {result['group']} v{result['version']}: {result['previous_status']} -> "
              f"{result['approval_status']} ({result['model_package_arn']})")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    files = _client(args).download(args.execution, to=args.to)
    if args.json:
        print_json([str(path) for path in files])
        return EXIT_OK
    for path in files:
        print(path)
    import os

    print(f"{len(files)} files in {os.path.commonpath(files) if files else args.to}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    rows = _client(args).predict(args.model, args.images, out=args.out, conf=args.conf)
    if args.json:
        print_json(rows)
        return EXIT_OK
    for row in rows:
        counts: dict[str, int] = {}
        for detection in row["detections"]:
            counts[detection["name"]] = counts.get(detection["name"], 0) + 1
        found = ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        print(f"{row['image']}: {len(row['detections'])} detections{f' ({found})' if found else ''} "
              f"-> {row['annotated']}")
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from pipeline import render

    return int(render.main(list(args.rest)) or 0)


def cmd_local(args: argparse.Namespace) -> int:
    try:
        from ..local import command
    except ImportError:
        err("the local mode (pipeline/local) is not in this version: use `make demo`")
        return EXIT_FAILED
    return int(command.main([args.local_command, *args.rest]) or 0)


def delegate(handler: Callable[[argparse.Namespace], int], rest: list[str]) -> int:
    """`render` and `local` parse their own arguments (and --help)."""
    if handler is cmd_local:
        args = argparse.Namespace(local_command=rest[0], rest=rest[1:])
    else:
        args = argparse.Namespace(rest=rest)
    try:
        return handler(args)
    except YolopipeError as error:
        err(str(error))
        return EXIT_FAILED


