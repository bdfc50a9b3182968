"""`yolopipe`: the command line for the people who train models with the pipeline.

This module only parses arguments and prints; each command calls a plain function a notebook
can call too (yolopipe.upload, yolopipe.executions, yolopipe.doctor, yolopipe_shared.dataset_rules,
yolopipe.datasets.convert). It imports no boto3, sagemaker, torch or ultralytics at start-up, so
`yolopipe --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from yolopipe_shared import parameters
from yolopipe_shared.errors import DatasetRejected, ExecutionNotFound, ParameterError, PipelineNotFound, YolopipeError

if TYPE_CHECKING:
    from ..aws import Aws, Settings
    from ..executions import ExecutionStatus

EXIT_OK = 0
EXIT_FAILED = 1  # dataset problems, execution Failed/Stopped, a doctor check failed
EXIT_USAGE = 2  # bad arguments or parameter values
EXIT_AWS = 3  # no credentials/region, AWS unreachable or denied, pipeline/execution/bucket not found
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success (watch/run --watch: the execution Succeeded)
  {EXIT_FAILED}    failed: dataset problems, execution Failed or Stopped, a doctor check failed
  {EXIT_USAGE}    bad usage or parameter value (nothing was called)
  {EXIT_AWS}    AWS: no credentials/region, unreachable, access denied, or pipeline/execution/bucket not found
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""

DESCRIPTION = """Drop a YOLO dataset into S3, get a trained, evaluated and registered YOLO11 model.

typical flow:
  yolopipe doctor                                  is this account ready?
  yolopipe dataset validate ./my-dataset           the trigger's rules, locally
  yolopipe upload ./my-dataset --name cats         upload (data.yaml last starts training)
  yolopipe watch latest                            live step table until it ends
  yolopipe report latest                           metrics, per-class table, model package
  yolopipe run --dataset cats --epochs 50          train again with other parameters

AWS: --profile/--region as the AWS CLI; --endpoint-url (or AWS_ENDPOINT_URL) for an emulator;
--local for the local mode's emulator. The stack (default 'yolopipe', or YOLOPIPE_STACK) gives
the bucket and pipeline; --bucket/--pipeline (YOLOPIPE_BUCKET/YOLOPIPE_PIPELINE) override it."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


# --- output helpers ----------------------------------------------------------------------------

def _print_json(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, default=str) + "\n")


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else " ".join(str(v).split()) for v in row]
                                           for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _fmt_metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value or "")


def _fmt_parameter(name: str, value: Any) -> str:
    spec = parameters.BY_NAME.get(name)
    return spec.to_string(value) if spec is not None else str(value)


def _err(message: str) -> None:
    sys.stderr.write(f"yolopipe: {message}\n")


# --- context -----------------------------------------------------------------------------------

def _settings(args: argparse.Namespace) -> Settings:
    from ..aws import Settings

    return Settings.from_env(
        profile=args.profile, region=args.region, endpoint_url=args.endpoint_url, local=args.local,
        stack=args.stack, bucket=args.bucket, pipeline=args.pipeline,
    )


def _aws(args: argparse.Namespace) -> Aws:
    from ..aws import Aws

    return Aws(_settings(args))


# --- commands ----------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import run_checks, summary

    checks = run_checks(_aws(args), instance_type=args.instance_type)
    result = summary(checks)
    if args.json:
        _print_json(result)
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
        for check in checks:
            print(f"[{marks[check.status]}] {check.name}: {check.detail}")
            if check.status == "fail" and check.fix:
                print(f"       fix: {check.fix}")
        print("ready to train" if result["ok"] else "not ready: fix the FAIL lines above")
    return EXIT_OK if result["ok"] else EXIT_FAILED


def cmd_dataset_validate(args: argparse.Namespace) -> int:
    from yolopipe_shared.dataset_sources import LocalDatasetSource
    from yolopipe_shared.validate import validate_dataset

    # Locally every label is read (20,000 in well under a second); --sample trades that for speed.
    report = validate_dataset(LocalDatasetSource(args.path), label_sample=args.sample)
    if args.json:
        _print_json({
            "ok": report.ok, "location": report.location, "problems": [str(p) for p in report.problems],
            "warnings": [str(w) for w in report.warnings], "names": report.names,
            "images_per_split": report.images_per_split, "labels_checked": report.labels_checked,
        })
    else:
        print(report.summary(limit=args.limit))
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_dataset_convert(args: argparse.Namespace) -> int:
    from ..datasets.convert import convert

    names = [name.strip() for name in args.names.split(",") if name.strip()] if args.names else None
    result = convert(args.format, args.src, args.dst, val_fraction=args.val_fraction, seed=args.seed,
                     names=names, images_dir=args.images)
    if args.json:
        _print_json({"root": str(result.root), "names": result.names, "counts": result.counts,
                     "skipped": result.skipped})
    else:
        counts = ", ".join(f"{split} {n}" for split, n in result.counts.items())
        print(f"wrote {result.root} ({counts} images; classes: {', '.join(result.names)})")
        for what, n in result.skipped.items():
            print(f"skipped {n}: {what}")
        print(f"next: yolopipe dataset validate {result.root} && yolopipe upload {result.root} --name NAME")
    return EXIT_OK


def _validate_or_raise(path: str) -> Any:
    """The trigger's checks, locally: the dataset rules (every label) and its yolopipe.yaml overrides."""
    from pathlib import Path

    from yolopipe_shared.dataset_sources import LocalDatasetSource
    from yolopipe_shared.overrides import OVERRIDES_FILE, parse_overrides
    from yolopipe_shared.validate import validate_dataset

    report = validate_dataset(LocalDatasetSource(path), label_sample=None)  # every label: cheap locally
    overrides = Path(path) / OVERRIDES_FILE
    if overrides.is_file():
        # the stack's MaxEpochs is not known here; the trigger checks it again
        report.problems.extend(parse_overrides(overrides.read_text(errors="replace"), None)[1])
    report.raise_if_rejected()
    return report


def cmd_upload(args: argparse.Namespace) -> int:
    from ..aws import aws_errors
    from ..upload import plan_upload, upload_dataset

    if not args.no_validate:
        report = _validate_or_raise(args.path)
        if not args.json:
            counts = ", ".join(f"{split} {n:,}" for split, n in report.images_per_split.items())
            print(f"validated {args.path}: {counts} images, classes: {', '.join(report.names)}")
    aws = _aws(args)
    bucket = aws.bucket()
    s3 = aws.client("s3", max_pool_connections=args.workers)
    with aws_errors(what=f"bucket {bucket!r}"):
        plan = plan_upload(s3, args.path, bucket, args.name)
    if not args.json:
        print(f"s3://{bucket}/{plan.prefix}: {len(plan.to_send):,} files to send "
              f"({plan.bytes_to_send / 1e6:.1f} MB), {len(plan.up_to_date):,} already there")
    if args.dry_run:
        if args.json:
            _print_json({"s3_uri": f"s3://{bucket}/{plan.prefix}", "to_send": len(plan.to_send),
                         "up_to_date": len(plan.up_to_date), "stale": len(plan.stale_keys)})
        return EXIT_OK
    bar = _progress_bar(len(plan.to_send) + (1 if plan.marker and not args.no_trigger else 0),
                        enabled=not args.json and not args.quiet)
    try:
        with aws_errors(what=f"bucket {bucket!r}"):
            result = upload_dataset(s3, args.path, bucket, args.name, trigger=not args.no_trigger,
                                    delete_stale=args.delete, workers=args.workers,
                                    progress=bar.update if bar else None, plan=plan)
    finally:
        if bar:
            bar.close()
    if args.json:
        _print_json(result.to_dict())
        return EXIT_OK
    deleted = f", {result.deleted:,} stale objects deleted" if result.deleted else ""
    print(f"uploaded {result.uploaded:,} files ({result.bytes_sent / 1e6:.1f} MB) in {result.seconds:.1f}s, "
          f"{result.skipped:,} already there{deleted}")
    if plan.stale_keys and not args.delete:
        print(f"note: {len(plan.stale_keys):,} objects under {result.s3_uri} are not in {args.path} "
              "(training would see them): re-run with --delete to remove them")
    print(result.s3_uri)
    if result.marker_written:
        print(f"data.yaml written last: the trigger validates the dataset and starts pipeline {aws.pipeline_name()}.")
        if args.watch:
            return _watch_triggered(args, aws, result)
        print("next: yolopipe watch latest    (or: yolopipe executions list; upload --watch waits for it)")
    elif args.no_trigger:
        print(f"data.yaml not uploaded (--no-trigger): nothing starts. Later: `yolopipe upload {args.path} "
              f"--name {args.name}` (sends only data.yaml) or `yolopipe run --dataset {result.s3_uri}`")
    else:
        print(f"nothing changed since the last upload, so nothing was triggered; to train again: "
              f"yolopipe run --dataset {result.s3_uri}")
    return EXIT_OK


def _watch_triggered(args: argparse.Namespace, aws: Aws, result: Any) -> int:
    from datetime import UTC, datetime

    from ..executions import wait_for_execution

    print("waiting for the trigger to start it...", flush=True)
    arn = wait_for_execution(aws.client("sagemaker"), aws.pipeline_name(), result.s3_uri,
                             since=result.marker_time or datetime.now(UTC), timeout=args.start_timeout)
    if arn is None:
        _err(f"no execution started within {args.start_timeout:g}s: the trigger may have refused the dataset "
             "(the notification says why), or it is slow; check `yolopipe executions list`")
        return EXIT_FAILED
    print(f"started {arn}")
    return _watch(args, aws, arn)


def _progress_bar(total: int, *, enabled: bool) -> Any:
    if not enabled or total <= 0 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    class _Bar:
        def __init__(self) -> None:
            self.bar = tqdm(total=total, unit="file", desc="upload", file=sys.stderr, dynamic_ncols=True)

        def update(self, files: int, size: int) -> None:
            self.bar.update(files)

        def close(self) -> None:
            self.bar.close()

    return _Bar()


def cmd_pipelines_list(args: argparse.Namespace) -> int:
    from ..executions import list_pipelines

    rows = list_pipelines(_aws(args).client("sagemaker"))
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no pipelines in this account/region: deploy the stack with `sam deploy --guided`")
    else:
        print(_table([(r["name"], r["created"], r["last_execution"] or "never") for r in rows],
                     ("PIPELINE", "CREATED", "LAST EXECUTION")))
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {spec.name: getattr(args, _dest(spec)) for spec in parameters.PARAMETERS
            if spec.name != "DatasetS3Uri" and getattr(args, _dest(spec), None) is not None}


def cmd_run(args: argparse.Namespace) -> int:
    from ..executions import check_dataset, plan_run, start_run

    overrides = _overrides(args)
    parameters.resolve(overrides)  # every value checked before any client exists
    aws = _aws(args)
    request = plan_run(aws.pipeline_name(), args.dataset, overrides, bucket=aws.bucket,
                       display_name=args.display_name)
    version = check_dataset(aws.client("s3"), str(request.parameters["DatasetS3Uri"]))
    request.parameters.setdefault("DatasetVersion", version)
    if args.dry_run:
        from ..executions import pipeline_defaults

        planned = request.to_dict(pipeline_defaults(aws.client("sagemaker"), request.pipeline))
        if args.json:
            _print_json({**planned, "api_request": request.api_request()})
        else:
            print(f"would start pipeline {request.pipeline} as {request.display_name} with:")
            effective = planned["effective_parameters"]
            print(_table([(name, _fmt_parameter(name, value), "" if name in request.parameters else "(default)")
                          for name, value in effective.items()], ("PARAMETER", "VALUE", "")))
        return EXIT_OK
    arn = start_run(aws.client("sagemaker"), request)
    if args.json and not args.watch:
        _print_json({"execution_arn": arn, **request.to_dict()})
        return EXIT_OK
    print(f"started {arn}")
    if args.watch:
        return _watch(args, aws, arn)
    print(f"next: yolopipe watch {arn.rsplit('/', 1)[-1]}")
    return EXIT_OK


def cmd_executions_list(args: argparse.Namespace) -> int:
    from ..executions import list_executions

    aws = _aws(args)
    rows = list_executions(aws.client("sagemaker"), aws.pipeline_name(), limit=args.limit)
    if args.json:
        _print_json(rows)
    elif not rows:
        print(f"pipeline {aws.pipeline_name()} has no executions yet: `yolopipe upload` or `yolopipe run`")
    else:
        print(_table([(r["id"], r["status"], r["started"], r["display_name"], r["failure_reason"][:60])
                      for r in rows], ("EXECUTION", "STATUS", "STARTED", "DISPLAY NAME", "REASON")))
    return EXIT_OK


def _resolve(aws: Aws, ref: str) -> str:
    from ..executions import find_execution

    return find_execution(aws.client("sagemaker"), aws.pipeline_name() if not ref.startswith("arn:") else "", ref)


def cmd_watch(args: argparse.Namespace) -> int:
    aws = _aws(args)
    return _watch(args, aws, _resolve(aws, args.execution))


def _watch(args: argparse.Namespace, aws: Aws, arn: str) -> int:
    from ..executions import watch

    renderer = _StatusRenderer(sys.stdout, json_lines=args.json)
    final = watch(aws.client("sagemaker"), arn, on_update=renderer, interval=args.interval, timeout=args.timeout)
    if not args.json:
        print(f"{final.status} after {_fmt_seconds(final.elapsed_s)}"
              + (f": {final.failure_reason}" if final.failure_reason else ""))
        if final.status == "Succeeded":
            print(f"next: yolopipe report {arn.rsplit('/', 1)[-1]}")
    return EXIT_OK if final.status == "Succeeded" else EXIT_FAILED


class _StatusRenderer:
    """The live step table: redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, out: TextIO, *, json_lines: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self.live = out.isatty() and not json_lines
        self.drawn = 0
        self.last = ""

    def __call__(self, status: ExecutionStatus) -> None:
        if self.json_lines:
            self.out.write(json.dumps(status.to_dict(), default=str) + "\n")
            self.out.flush()
            return
        rows = [(s.name, s.type, s.status, _fmt_seconds(s.elapsed_s), s.failure_reason[:70]) for s in status.steps]
        text = (f"{status.display_name or status.arn.rsplit('/', 1)[-1]}: {status.status} "
                f"({_fmt_seconds(status.elapsed_s)})\n"
                + (_table(rows, ("STEP", "TYPE", "STATUS", "ELAPSED", "REASON")) if rows else "(no step started yet)"))
        if self.live:
            import shutil

            width = shutil.get_terminal_size().columns
            text = "\n".join(line[:width - 1] for line in text.split("\n"))  # no wrapping: redraw stays exact
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}F\x1b[J")  # back to the table's first line, clear below
            self.out.write(text + "\n")
            self.drawn = text.count("\n") + 1
        else:
            changed = text.split("\n", 1)[1] if "\n" in text else text
            key = status.status + changed
            if key == self.last:
                return
            self.last = key
            self.out.write(text + "\n")
        self.out.flush()


def cmd_report(args: argparse.Namespace) -> int:
    from ..executions import report

    aws = _aws(args)
    data = report(aws.client("sagemaker"), aws.client("s3"), _resolve(aws, args.execution))
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"{data['display_name'] or data['arn']}  [{data['status']}]  pipeline {data['pipeline']}, "
          f"{_fmt_seconds(data['elapsed_s'])}")
    print(f"  {data['arn']}")
    if data["failure_reason"]:
        print(f"  failure: {data['failure_reason']}")
    print("\nparameters")
    print(_table([(name, _fmt_parameter(name, value)) for name, value in data["parameters"].items()],
                 ("NAME", "VALUE")))
    if data["steps"]:
        print("\nsteps")
        print(_table([(s["name"], s["type"], s["status"], _fmt_seconds(s["elapsed_s"]), s["failure_reason"][:70])
                      for s in data["steps"]], ("STEP", "TYPE", "STATUS", "ELAPSED", "REASON")))
    if data["metrics"]:
        from yolopipe_shared.evaluation import METRICS

        print(f"\nmetrics ({data['evaluation_split'] or 'evaluation'} split)")
        print(_table([(METRICS.get(k, k), _fmt_metric(v)) for k, v in data["metrics"].items()], ("METRIC", "VALUE")))
    if data["per_class"]:
        print("\nper class")
        print(_table([(c.get("name"), _fmt_metric(c.get("map50_95")), _fmt_metric(c.get("map50")),
                       _fmt_metric(c.get("precision")), _fmt_metric(c.get("recall")), c.get("instances"))
                      for c in data["per_class"]],
                     ("CLASS", "mAP50-95", "mAP50", "PRECISION", "RECALL", "INSTANCES")))
    if data["model_package"]:
        package = data["model_package"]
        print(f"\nmodel package: {package.get('arn')} ({package.get('approval_status', '')})")
    if data["artifacts"]:
        print("\nartifacts")
        print(_table(list(data["artifacts"].items()), ("WHAT", "URI")))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from yolopipe_shared.evaluation import METRICS

    from ..executions import compare

    aws = _aws(args)
    arns = [_resolve(aws, ref) for ref in args.executions]
    reports = compare(aws.client("sagemaker"), aws.client("s3"), arns)
    if args.json:
        _print_json(reports)
        return EXIT_OK
    headers = ["", *[r["arn"].rsplit("/", 1)[-1] for r in reports]]
    rows: list[list[Any]] = [["status", *[r["status"] for r in reports]]]
    rows += [[label, *[_fmt_metric(r["metrics"].get(name, "")) for r in reports]] for name, label in METRICS.items()]
    names = [name for name in parameters.BY_NAME if len({str(r["parameters"].get(name)) for r in reports}) > 1]
    rows += [[name, *[_fmt_parameter(name, r["parameters"].get(name)) for r in reports]] for name in names]
    rows.append(["model package", *[(r["model_package"] or {}).get("approval_status", "-") for r in reports]])
    print(_table(rows, headers))
    if len(reports) > 1 and not names:
        print("(same parameters)")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from ..executions import stop

    aws = _aws(args)
    arn = _resolve(aws, args.execution)
    status = stop(aws.client("sagemaker"), arn)
    if args.json:
        _print_json({"execution_arn": arn, "status": status})
    elif status in ("Succeeded", "Failed", "Stopped"):
        print(f"{arn} already ended: {status}")
    else:
        print(f"stopping {arn} ({status}); `yolopipe watch {arn.rsplit('/', 1)[-1]}` shows when it has stopped")
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from pipeline import render

    return int(render.main(list(args.rest)) or 0)


def cmd_local(args: argparse.Namespace) -> int:
    try:
        from ..local import runner  # type: ignore[attr-defined]
    except ImportError:
        _err("the local mode (pipeline/local) is not in this version: use `make demo`")
        return EXIT_FAILED
    return int(runner.main([args.local_command, *args.rest]) or 0)


def _delegate(handler: Callable[[argparse.Namespace], int], rest: list[str]) -> int:
    """`render` and `local` parse their own arguments (and --help)."""
    if handler is cmd_local:
        args = argparse.Namespace(local_command=rest[0], rest=rest[1:])
    else:
        args = argparse.Namespace(rest=rest)
    try:
        return handler(args)
    except YolopipeError as error:
        _err(str(error))
        return EXIT_FAILED


# --- the parser --------------------------------------------------------------------------------

def _dest(spec: parameters.ParameterSpec) -> str:
    return f"param_{spec.snake}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _param_help(spec: parameters.ParameterSpec) -> str:
    bounds = ""
    if spec.choices:
        bounds = f"; one of {', '.join(spec.choices)}"
    elif spec.minimum is not None and spec.maximum is not None:
        step = f", multiple of {spec.multiple_of}" if spec.multiple_of else ""
        bounds = f"; {_num(spec.minimum)}..{_num(spec.maximum)}{step}"
    default = parameters.ParameterSpec.to_string(spec, spec.default)
    return f"{spec.help}{bounds} (default: {default})".replace("%", "%%")


def _add_global(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("AWS and stack")
    group.add_argument("--profile", default=default(None), help="AWS profile (default: AWS_PROFILE / default)")
    group.add_argument("--region", default=default(None), help="AWS region (default: AWS_REGION / profile)")
    group.add_argument("--endpoint-url", default=default(None),
                       help="AWS endpoint, e.g. an emulator (default: AWS_ENDPOINT_URL)")
    group.add_argument("--local", action="store_true", default=default(False),
                       help="use `yolopipe local serve`'s emulator (YOLOPIPE_LOCAL_ENDPOINT, "
                            "default http://127.0.0.1:5000)")
    group.add_argument("--stack", default=default(None),
                       help="CloudFormation stack (default: YOLOPIPE_STACK / yolopipe)")
    group.add_argument("--bucket", default=default(None), help="dataset bucket (default: the stack's)")
    group.add_argument("--pipeline", default=default(None), help="pipeline name (default: the stack's)")
    group.add_argument("--json", action="store_true", default=default(False), help="print data as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="yolopipe", description=DESCRIPTION, epilog=EXIT_CODES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global(parser, suppress=False)
    common = _Parser(add_help=False)
    _add_global(common, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str,
                where: Any = commands, **kwargs: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = where.add_parser(
            name, help=help, description=help, parents=[common], epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("doctor", cmd_doctor, "check credentials, region, bucket, pipeline, role and training quota")
    sub.add_argument("--instance-type", help="training instance type whose quota to check "
                                             f"(default: {parameters.BY_NAME['TrainingInstanceType'].default})")

    dataset = commands.add_parser("dataset", help="validate or convert a local dataset", parents=[common])
    dataset_commands = dataset.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", parser_class=_Parser,
                                              required=True)
    sub = command("validate", cmd_dataset_validate, "check a local YOLO dataset with the trigger's rules",
                  where=dataset_commands)
    sub.add_argument("path", help="folder with data.yaml at its root")
    sub.add_argument("--sample", type=int, default=None, metavar="N",
                     help="check a seeded sample of N label files, as the trigger does (default: every one)")
    sub.add_argument("--limit", type=int, default=50, help="problems to print (default 50)")
    sub = command("convert", cmd_dataset_convert, "convert COCO, Pascal VOC or ImageFolder to a YOLO dataset",
                  where=dataset_commands)
    sub.add_argument("--from", dest="format", required=True, choices=("coco", "voc", "imagefolder"),
                     help="source format")
    sub.add_argument("src", help="source dataset (COCO JSON or its folder, VOC folder, ImageFolder root)")
    sub.add_argument("dst", help="new folder for the YOLO dataset")
    sub.add_argument("--val-fraction", type=float, default=0.2, help="share of images for val (default 0.2)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    sub.add_argument("--names", help="VOC: class names in id order, comma-separated (default: order of first "
                                     "appearance); objects of other classes are skipped")
    sub.add_argument("--images", help="COCO: folder holding the images (default: beside the JSON)")

    sub = command("upload", cmd_upload, "validate and upload a dataset, data.yaml last (which starts training)")
    sub.add_argument("path", help="folder with data.yaml at its root")
    sub.add_argument("--name", required=True, help="dataset name: s3://<bucket>/datasets/<name>/")
    sub.add_argument("--no-trigger", action="store_true", help="upload everything but data.yaml: start nothing")
    sub.add_argument("--delete", action="store_true", help="delete objects under the prefix that are not local")
    sub.add_argument("--no-validate", action="store_true",
                     help="skip the local validation (the trigger still validates)")
    sub.add_argument("--workers", type=int, default=32, help="parallel uploads (default 32)")
    sub.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_argument("--watch", action="store_true",
                     help="then wait for the execution the trigger starts and watch it (exit code as `watch`)")
    sub.add_argument("--start-timeout", type=float, default=120.0,
                     help="with --watch: seconds to wait for the trigger to start it (default 120)")
    _watch_options(sub)

    pipelines = commands.add_parser("pipelines", help="list pipelines", parents=[common])
    pipelines_commands = pipelines.add_subparsers(dest="pipelines_command", metavar="SUBCOMMAND",
                                                  parser_class=_Parser, required=True)
    command("list", cmd_pipelines_list, "list the pipelines in this account/region", where=pipelines_commands)

    sub = command("run", cmd_run, "start an execution on a dataset with any parameter overridden")
    sub.add_argument("--dataset", "--dataset-s3-uri", required=True,
                     help="s3://<bucket>/datasets/<name>/, or just <name> in the stack's bucket")
    group = sub.add_argument_group("pipeline parameters (checked before any AWS call)")
    for spec in parameters.PARAMETERS:
        if spec.name == "DatasetS3Uri":
            continue
        flags = [spec.flag] + (["--variant"] if spec.name == "ModelVariant" else [])
        metavar = {"integer": "N", "float": "X", "boolean": "true|false"}.get(spec.kind, "VALUE")
        group.add_argument(*flags, dest=_dest(spec), metavar=metavar, default=None, help=_param_help(spec))
    sub.add_argument("--display-name", help="execution display name (default: cli-<dataset>-<time>)")
    sub.add_argument("--dry-run", action="store_true", help="print what would start, start nothing")
    sub.add_argument("--watch", action="store_true", help="then watch it (exit code as `watch`)")
    _watch_options(sub)

    executions = commands.add_parser("executions", help="list executions", parents=[common])
    executions_commands = executions.add_subparsers(dest="executions_command", metavar="SUBCOMMAND",
                                                    parser_class=_Parser, required=True)
    sub = command("list", cmd_executions_list, "list the pipeline's recent executions", where=executions_commands)
    sub.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    execution_help = "execution id, ARN, or 'latest'"
    sub = command("watch", cmd_watch, "live step table until the execution ends; exit 0 only on Succeeded")
    sub.add_argument("execution", help=execution_help)
    _watch_options(sub)
    sub = command("report", cmd_report, "parameters, metrics, per-class table, model package, artifacts")
    sub.add_argument("execution", help=execution_help)
    sub = command("compare", cmd_compare, "metrics and differing parameters of executions side by side")
    sub.add_argument("executions", nargs="+", metavar="EXECUTION", help=execution_help)
    sub = command("stop", cmd_stop, "stop a running execution")
    sub.add_argument("execution", help=execution_help)

    sub = command("render", cmd_render, "render the pipeline definition JSON (see `yolopipe render -- --help`)",
                  add_help=False)
    sub.add_argument("rest", nargs=argparse.REMAINDER)
    sub = command("local", cmd_local, "no AWS account: `local run [PATH]` runs it all once, `local serve` keeps "
                                      "the local stack up for --local")
    sub.add_argument("local_command", metavar="SUBCOMMAND", help="run or serve (see `yolopipe local run --help`)")
    sub.add_argument("rest", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def _watch_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    sub.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 1)")


def main(argv: Sequence[str] | None = None) -> int:
    from ..aws import AwsUnavailable, NotFound

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["render"]:  # its own parser and --help
        return _delegate(cmd_render, argv[1:])
    if argv[:1] == ["local"] and argv[1:2] not in (["-h"], ["--help"], []):
        return _delegate(cmd_local, argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    if args.local and args.endpoint_url:
        _err("give --local or --endpoint-url, not both")
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except ParameterError as error:
        _err(f"{error} (see `yolopipe {args.command} --help`)")
        return EXIT_USAGE
    except DatasetRejected as error:
        for problem in error.problems[:50]:
            sys.stderr.write(f"{problem}\n")
        more = " (first 50 shown)" if len(error.problems) > 50 else ""
        _err(f"dataset rejected: {len(error.problems)} problem(s){more}; fix them and run again "
             "(`yolopipe dataset validate PATH` lists them all)")
        return EXIT_FAILED
    except (AwsUnavailable, NotFound, PipelineNotFound, ExecutionNotFound) as error:
        _err(str(error))
        return EXIT_AWS
    except YolopipeError as error:
        _err(str(error))
        return EXIT_INTERRUPTED if isinstance(error.__cause__, KeyboardInterrupt) else EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted (an execution already started keeps running: `yolopipe stop` stops it)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `yolopipe executions list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
