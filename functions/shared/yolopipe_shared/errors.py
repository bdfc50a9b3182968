"""Domain errors shared by the functions, the CLI and the training code.

Adapters translate library errors (botocore's ClientError, YAML errors...) into these with
`raise ... from`, so one place decides what is retried, reported or refused.
"""

from __future__ import annotations


class YolopipeError(Exception):
    """Base class: an expected failure whose message tells the user what to do (one line)."""


class ParameterError(YolopipeError, ValueError):
    """A pipeline parameter is unknown, of the wrong type or out of bounds."""


class DatasetRejected(YolopipeError):
    """A dataset failed validation; `problems` lists what is wrong, one line each."""

    def __init__(self, problems: list[object]) -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else "dataset rejected"
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class PipelineNotFound(YolopipeError):
    """The named SageMaker pipeline does not exist in this account/region."""


class ExecutionNotFound(YolopipeError):
    """The pipeline execution does not exist."""


class DefinitionError(YolopipeError):
    """The pipeline definition is malformed, references something undefined, or a placeholder is unfilled."""
