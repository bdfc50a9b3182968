"""`yolopipe`: the command line for the people who train models with the pipeline.

    parser.py    the commands, their flags and help
    commands.py  each command: calls the API (yolopipe.client) and formats its result
    output.py    exit codes, tables, JSON, the live status view

It imports no boto3, sagemaker, torch or ultralytics at start-up, so `yolopipe --help` is instant.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from yolopipe_shared.dataset_sources import NotADatasetFolder
from yolopipe_shared.errors import DatasetRejected, ExecutionNotFound, ParameterError, PipelineNotFound, YolopipeError

from .commands import cmd_local, cmd_render, delegate
from .output import EXIT_AWS, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, err
from .parser import build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from ..aws import AwsUnavailable, NotFound

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["render"]:  # its own parser and --help
        return delegate(cmd_render, argv[1:])
    if argv[:1] == ["local"] and argv[1:2] not in (["-h"], ["--help"], []):
        return delegate(cmd_local, argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    if args.local and args.endpoint_url:
        err("give --local or --endpoint-url, not both")
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except ParameterError as error:
        err(f"{error} (see `yolopipe {args.command} --help`)")
        return EXIT_USAGE
    except NotADatasetFolder as error:  # the PATH argument names no folder: bad usage, as the README says
        err(str(error))
        return EXIT_USAGE
    except DatasetRejected as error:
        for problem in error.problems[:50]:
            sys.stderr.write(f"{problem}\n")
        more = " (first 50 shown)" if len(error.problems) > 50 else ""
        err(f"dataset rejected: {len(error.problems)} problem(s){more}; fix them and run again "
             "(`yolopipe dataset validate PATH` lists them all)")
        return EXIT_FAILED
    except (AwsUnavailable, NotFound, PipelineNotFound, ExecutionNotFound) as error:
        err(str(error))
        return EXIT_AWS
    except YolopipeError as error:
        err(str(error))
        return EXIT_INTERRUPTED if isinstance(error.__cause__, KeyboardInterrupt) else EXIT_FAILED
    except KeyboardInterrupt:
        err("interrupted (an execution already started keeps running: `yolopipe stop latest` stops it)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `yolopipe executions list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
