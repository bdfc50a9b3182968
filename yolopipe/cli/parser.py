"""The `yolopipe` argument parser: commands, flags (one per pipeline parameter, from the shared
registry), help texts and the documented exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from yolopipe_shared import parameters

from . import commands as c
from .output import EXIT_CODES, EXIT_USAGE

DESCRIPTION = """Drop a YOLO dataset into S3, get a trained, evaluated and registered YOLO11 model.

typical flow:
  yolopipe doctor                                  is this account ready?
  yolopipe dataset validate ./my-dataset           the trigger's rules, locally
  yolopipe upload ./my-dataset --name cats         upload (data.yaml last starts training)
  yolopipe watch latest                            steps and epoch progress until it ends
  yolopipe report latest                           metrics, per-class table, model package
  yolopipe download latest                         best.pt, plots, evaluation.json -> runs/<execution>/
  yolopipe predict latest photo.jpg                the model on your images: annotated copies
  yolopipe approve latest                          its model package: approved (--reject: rejected)
  yolopipe logs latest --follow                    the training job's own output
  yolopipe run --dataset cats --epochs 50          train again with other parameters

AWS: --profile/--region as the AWS CLI; --endpoint-url (or AWS_ENDPOINT_URL) for an emulator;
--local for the local mode's emulator. The stack (default 'yolopipe', or YOLOPIPE_STACK) gives
the bucket and pipeline; --bucket/--pipeline (YOLOPIPE_BUCKET/YOLOPIPE_PIPELINE) override it.
Waits: YOLOPIPE_CONNECT_TIMEOUT (10 s) and YOLOPIPE_READ_TIMEOUT (60 s), 3 attempts per call."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def dest(spec: parameters.ParameterSpec) -> str:
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
    # Commands that never call AWS (dataset validate/convert, local, render) show no AWS flags.
    offline = _Parser(add_help=False)
    offline.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print data as JSON")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str,
                where: Any = commands, flags: str = "aws", **kwargs: Any) -> argparse.ArgumentParser:
        shared = {"aws": [common], "json": [offline], "none": []}[flags]
        sub: argparse.ArgumentParser = where.add_parser(
            name, help=help, description=help, parents=shared, epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("doctor", c.cmd_doctor, "check credentials, region, bucket, pipeline, role and the "
                                          "SageMaker quotas its jobs need (training, processing)")
    sub.add_argument("--instance-type", help="training instance type whose quota to check (default: the deployed "
                                             "pipeline's, else "
                                             f"{parameters.BY_NAME['TrainingInstanceType'].default})")

    dataset = commands.add_parser("dataset", help="validate or convert a local dataset")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", parser_class=_Parser,
                                              required=True)
    sub = command("validate", c.cmd_dataset_validate, "check a local YOLO dataset with the trigger's rules",
                  where=dataset_commands, flags="json")
    sub.add_argument("path", help="folder with data.yaml at its root")
    sub.add_argument("--sample", type=int, default=None, metavar="N",
                     help="check a seeded sample of N label files, as the trigger does (default: every one)")
    sub.add_argument("--limit", type=int, default=50, help="problems to print (default 50)")
    sub = command("convert", c.cmd_dataset_convert, "convert COCO, Pascal VOC or ImageFolder to a YOLO dataset",
                  where=dataset_commands, flags="json")
    sub.add_argument("--from", dest="format", required=True, choices=("coco", "voc", "imagefolder"),
                     help="source format")
    sub.add_argument("src", help="source dataset (COCO JSON or its folder, VOC folder, ImageFolder root)")
    sub.add_argument("dst", help="new folder for the YOLO dataset")
    sub.add_argument("--val-fraction", type=float, default=0.2, help="share of images for val (default 0.2)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    sub.add_argument("--names", help="VOC: class names in id order, comma-separated (default: order of first "
                                     "appearance); objects of other classes are skipped")
    sub.add_argument("--images", help="COCO: folder holding the images (default: beside the JSON)")

    sub = command("upload", c.cmd_upload, "validate and upload a dataset, data.yaml last (which starts training)")
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
    command("list", c.cmd_pipelines_list, "list the pipelines in this account/region", where=pipelines_commands)

    sub = command("run", c.cmd_run, "start an execution on a dataset with any parameter overridden")
    sub.add_argument("--dataset", "--dataset-s3-uri", required=True,
                     help="s3://<bucket>/datasets/<name>/, or just <name> in the stack's bucket")
    group = sub.add_argument_group("pipeline parameters (checked before any AWS call)")
    for spec in parameters.PARAMETERS:
        if spec.name in ("DatasetS3Uri", "DatasetName"):  # --dataset gives both
            continue
        flags = [spec.flag] + (["--variant"] if spec.name == "ModelVariant" else [])
        if spec.hyperparameter and f"--{spec.hyperparameter}" not in flags and spec.name != "UltralyticsSettings":
            flags.append(f"--{spec.hyperparameter}")  # Ultralytics' name: --imgsz, --batch, --lr0
        flags += ["--mlflow"] if spec.name == "MlflowTrackingUri" else []  # --mlflow URI; --mlflow '' turns it off
        metavar = {"integer": "N", "float": "X", "boolean": "true|false"}.get(spec.kind, "VALUE")
        group.add_argument(*flags, dest=dest(spec), metavar=metavar, default=None, help=_param_help(spec))
    group.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                       help="any Ultralytics train setting by its own name, repeatable: --set patience=20 "
                            "--set optimizer=AdamW (checked against the pinned Ultralytics' list)")
    group.add_argument("--lower-gate", action="store_true",
                       help="allow --min-map50-95 below the stack's quality gate (the report and the "
                            "notification say so)")
    sub.add_argument("--display-name", help="execution display name (default: cli-<dataset>-<time>)")
    sub.add_argument("--dry-run", action="store_true", help="print what would start, start nothing")
    sub.add_argument("--watch", action="store_true", help="then watch it (exit code as `watch`)")
    _watch_options(sub)

    weights = commands.add_parser("weights", help="official YOLO11 weights for jobs without internet access",
                                  parents=[common])
    weights_commands = weights.add_subparsers(dest="weights_command", metavar="SUBCOMMAND", parser_class=_Parser,
                                              required=True)
    sub = command("stage", c.cmd_weights_stage, "download yolo11<variant>.pt here (Ultralytics) and upload it to "
                                                "s3://<bucket>/weights/: prints the Weights=s3://... to run with",
                  where=weights_commands)
    sub.add_argument("variant", nargs="?", default="n", choices=parameters.BY_NAME["ModelVariant"].choices,
                     help="YOLO11 size (default n)")

    executions = commands.add_parser("executions", help="list executions", parents=[common])
    executions_commands = executions.add_subparsers(dest="executions_command", metavar="SUBCOMMAND",
                                                    parser_class=_Parser, required=True)
    sub = command("list", c.cmd_executions_list, "list the pipeline's recent executions", where=executions_commands)
    sub.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    execution_help = "execution id, ARN, or 'latest'"
    sub = command("watch", c.cmd_watch, "live step table until the execution ends; exit 0 only on Succeeded")
    sub.add_argument("execution", help=execution_help)
    _watch_options(sub)
    sub = command("report", c.cmd_report, "parameters, metrics, per-class table, model package, artifacts")
    sub.add_argument("execution", help=execution_help)
    sub = command("logs", c.cmd_logs, "a step's job output from CloudWatch Logs (the Train or Evaluate job)")
    sub.add_argument("execution", help=execution_help)
    sub.add_argument("--step", default="Train", help="the step whose job to show: Train (default) or Evaluate")
    sub.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the step ends")
    sub.add_argument("--interval", type=float, default=5.0, help="with --follow: seconds between reads (default 5)")
    sub = command("compare", c.cmd_compare, "metrics and differing parameters of executions side by side")
    sub.add_argument("executions", nargs="+", metavar="EXECUTION", help=execution_help)
    sub = command("stop", c.cmd_stop, "stop a running execution")
    sub.add_argument("execution", help=execution_help)

    sub = command("approve", c.cmd_approve, "approve an execution's model package (the baseline the next ones must "
                                            "beat), or reject it with --reject")
    sub.add_argument("ref", metavar="EXECUTION|PACKAGE_ARN", help=f"{execution_help}, or a model package ARN")
    sub.add_argument("--reject", action="store_true", help="set it Rejected instead of Approved")

    sub = command("download", c.cmd_download, "the model (best.pt, last.pt, args.yaml, results.csv), the "
                                              "training and evaluation plots and evaluation.json, to a folder")
    sub.add_argument("execution", help=execution_help)
    sub.add_argument("--to", metavar="DIR", default=None, help="where (default runs/<execution-id>/)")
    sub = command("predict", c.cmd_predict, "run a model on local images: one line per image, and annotated "
                                            "copies (to see what it does before approving it)")
    sub.add_argument("model", metavar="EXECUTION|MODEL", help=f"{execution_help}, a model package ARN or a .pt file")
    sub.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    sub.add_argument("--out", metavar="DIR", default=None,
                     help="where the annotated copies go (default runs/<execution-id>/predict/)")
    sub.add_argument("--conf", type=float, default=0.25, help="lowest confidence shown (default 0.25)")

    sub = command("render", c.cmd_render, "render the pipeline definition JSON (see `yolopipe render --help`)",
                  flags="none", add_help=False)
    sub.add_argument("rest", nargs=argparse.REMAINDER)
    sub = command("local", c.cmd_local, "no AWS account: `local run [PATH]` runs it all once, `local serve` keeps "
                                      "the local stack up for --local", flags="none")
    sub.add_argument("local_command", metavar="SUBCOMMAND", help="run or serve (see `yolopipe local run --help`)")
    sub.add_argument("rest", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def _watch_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    sub.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 1)")


