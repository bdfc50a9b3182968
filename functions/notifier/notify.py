"""The notifier's logic: one status change -> a Slack message (Block Kit + text fallback) and an
email through SNS (plain text), with the same facts. The email goes first: whatever Slack does
(refuse, stall, trickle, rate-limit) never stops or delays it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import slack
from botocore.exceptions import BotoCoreError, ClientError
from notifier_config import NotifierConfig

from yolopipe_shared import evaluation
from yolopipe_shared.cost import PriceList
from yolopipe_shared.execution_report import (
    NOTIFY_STATUSES,
    TERMINAL_STATUSES,
    ExecutionReport,
    described_status,
    gather_report,
)
from yolopipe_shared.layout import STEP_TRAIN
from yolopipe_shared.topic import email_subject, publish

logger = logging.getLogger(__name__)

ICONS = {"Executing": "🚀", "Succeeded": "✅", "Failed": "❌", "Stopped": "⏹️"}
HEADLINES = {
    "Executing": "Training started",
    "Succeeded": "Training succeeded",
    "Failed": "Training failed",
    "Stopped": "Training stopped",
}
#: Parameters worth a line in the message (the dataset has its own line).
SHOWN_PARAMETERS = ("ModelVariant", "Epochs", "ImageSize", "TrainingInstanceType", "MinMap50_95")


def facts(report: ExecutionReport) -> list[tuple[str, str]]:
    """Label/value pairs shared by the Slack message and the email, in display order."""
    pairs = [("Status", report.status), ("Pipeline", report.pipeline_name), ("Dataset", report.dataset_uri or "?"),
             ("Execution", report.display_name or report.execution_arn.rsplit("/", 1)[-1])]
    if report.duration:
        pairs.append(("Duration", report.duration))
    shown = [f"{k}={report.parameters[k]}" for k in SHOWN_PARAMETERS if k in report.parameters]
    if shown:
        pairs.append(("Parameters", ", ".join(shown)))
    pairs += [("Warning", warning) for warning in report.warnings]  # e.g. a quality gate lowered for this run
    return pairs


#: SageMaker's error code when CreateTrainingJob / CreateProcessingJob is refused for a quota. A step's
#: failure carries no structured code, only SageMaker's text, which quotes the API error: "...
#: (ResourceLimitExceeded) when calling the CreateTrainingJob operation: The account-level service
#: limit 'ml.g4dn.xlarge for spot training job usage' is 0 Instances, ...".
RESOURCE_LIMIT_CODE = "ResourceLimitExceeded"
_QUOTA_INSTANCE = re.compile(r"'(ml\.[a-z0-9.-]+) for (?:spot )?(?:training|processing) job usage'")


def quota_advice(report: ExecutionReport) -> str:
    """The line that says what to do when a step failed on a SageMaker quota ('' otherwise)."""
    if report.status != "Failed" or RESOURCE_LIMIT_CODE not in report.failure_reason:
        return ""
    found = _QUOTA_INSTANCE.search(report.failure_reason)
    if found:
        instance = found.group(1)
    elif report.failed_step == STEP_TRAIN and report.parameters.get("TrainingInstanceType"):
        instance = str(report.parameters["TrainingInstanceType"])
    else:
        instance = f"the {report.failed_step or 'failed'} step's instance type"
    return (f"SageMaker quota reached for {instance}: request an increase (`yolopipe doctor` shows which), "
            f"then run `yolopipe run --dataset {report.dataset or '<name>'}` again")


#: The cost lines' title: an estimate of the SageMaker jobs only (README: "What a run cost").
COST_TITLE = "Cost (estimate: SageMaker jobs only)"


def cost_lines(report: ExecutionReport) -> list[str]:
    """One line per job and the total (final statuses; [] when the cost could not be read)."""
    return report.cost.lines() if report.cost is not None else []


#: The champion/challenger line's title (a failed gate says it in the failure reason instead).
VERDICT_TITLE = "Compared with the approved model"


#: The training lines' title (final statuses): the Train job in numbers and where to look at it.
TRAINING_TITLE = "Training"


def training_summary(report: ExecutionReport) -> str:
    """`best epoch 7 of 12, 1h02m training, 48.2 images/s`, or where a cached Train step came from ('' if neither)."""
    if report.status not in TERMINAL_STATUSES:
        return ""
    if report.reused_from:
        return f"reused from execution {report.reused_from} (step cache: no training, no cost)"
    done = report.training
    if done is None:
        return ""
    parts = []
    if done.best_epoch:
        parts.append(f"best epoch {done.best_epoch}" + (f" of {done.epochs_done}" if done.epochs_done else ""))
    if done.training_seconds is not None:
        minutes, seconds = divmod(done.training_seconds, 60)
        hours, minutes = divmod(minutes, 60)
        parts.append((f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s") + " training")
    if done.images_per_second:
        parts.append(f"{done.images_per_second:g} images/s")
    return ", ".join(parts)


def training_links(report: ExecutionReport) -> list[tuple[str, str]]:
    """(label, URL) of the training job's console page and its logs (final statuses, a job of its own)."""
    if report.status not in TERMINAL_STATUSES or not report.training_job or report.reused_from:
        return []
    return [("Training job", report.training_job_url), ("Training logs", report.training_logs_url)]


def metric_pairs(report: ExecutionReport) -> list[tuple[str, str]]:
    return [(evaluation.METRICS[name], f"{value:.3f}") for name, value in report.metrics.items()]


def headline(report: ExecutionReport) -> str:
    name = report.dataset or report.display_name or report.pipeline_name
    return f"{HEADLINES.get(report.status, report.status)}: {name}"


def slack_message(report: ExecutionReport) -> dict[str, Any]:
    """Block Kit within Slack's limits, plus the `text` fallback notifications show."""
    blocks: list[dict[str, Any]] = [slack.header(f"{ICONS.get(report.status, '')} {headline(report)}".strip())]
    blocks += slack.fields(facts(report))
    if report.metrics:
        blocks.append(slack.section("*Evaluation*"))
        blocks += slack.fields(metric_pairs(report))
    if report.verdict:
        blocks.append(slack.section(f"*{VERDICT_TITLE}*\n{slack.escape(report.verdict)}"))
    if report.mlflow:
        blocks.append(slack.section(f"*MLflow*\n{slack.escape(report.mlflow)}"))
    if report.model_package_arn:
        blocks.append(slack.section(f"*Registered model package* (pending approval)\n"
                                    f"`{slack.escape(report.model_package_arn)}`"))
    if report.status == "Failed":
        step = f" in step *{slack.escape(report.failed_step)}*" if report.failed_step else ""
        reason = slack.escape(report.failure_reason or "no reason given")
        blocks.append(slack.section(f"*Failed*{step}\n```{reason}```"))
    advice = quota_advice(report)
    if advice:
        blocks.append(slack.section(slack.escape(advice)))
    spent = cost_lines(report)
    if spent:
        blocks.append(slack.section(f"*{COST_TITLE}*\n" + slack.escape("\n".join(spent))))
    trained = training_summary(report)
    if trained:
        blocks.append(slack.section(f"*{TRAINING_TITLE}*\n{slack.escape(trained)}"))
    actions = slack.button("Open in the SageMaker console", report.console_url)
    for label, url in training_links(report):
        actions["elements"] += slack.button(label, url)["elements"]
    blocks.append(actions)
    text = "; ".join([headline(report)] + [f"{k}: {v}" for k, v in facts(report)[1:] + metric_pairs(report)])
    if report.verdict:
        text += f"; {VERDICT_TITLE.lower()}: {report.verdict}"
    if report.mlflow:
        text += f"; {report.mlflow}"
    if report.status == "Failed" and (report.failed_step or report.failure_reason):
        text += f"; failed step {report.failed_step or '?'}: {report.failure_reason}"
    if advice:
        text += f"; {advice}"
    if spent:
        text += "; cost (estimate): " + ", ".join(spent)
    if trained:
        text += f"; {TRAINING_TITLE.lower()}: {trained}"
    return slack.message(text, blocks)


def email(report: ExecutionReport) -> tuple[str, str]:
    """(subject, plain-text body) with the same facts as the Slack message."""
    width = max(len(k) for k, _ in facts(report) + metric_pairs(report) + [("Model package", "")])
    lines = [headline(report), ""]
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in facts(report)]
    if report.metrics:
        lines += ["", "Evaluation:"] + [f"  {k + ':':<{width - 1}} {v}" for k, v in metric_pairs(report)]
    if report.verdict:
        lines += ["", f"{VERDICT_TITLE}: {report.verdict}"]
    if report.mlflow:
        lines += ["", report.mlflow]
    if report.model_package_arn:
        lines += ["", f"Registered model package (pending approval): {report.model_package_arn}"]
    if report.status == "Failed":
        lines += ["", f"Failed step: {report.failed_step or '?'}",
                  f"Reason: {report.failure_reason or 'no reason given'}"]
        advice = quota_advice(report)
        if advice:
            lines += ["", advice]
    spent = cost_lines(report)
    if spent:
        lines += ["", f"{COST_TITLE}:"] + [f"  {line}" for line in spent]
    trained = training_summary(report)
    if trained:
        lines += ["", f"{TRAINING_TITLE}: {trained}"]
    lines += ["", f"Console: {report.console_url}", f"Execution ARN: {report.execution_arn}"]
    lines += [f"{label}: {url}" for label, url in training_links(report)]
    return email_subject(f"yolopipe: {headline(report)}"), "\n".join(lines) + "\n"


WebhookLookup = Callable[[], str | None]


def webhook_url(config: NotifierConfig, secrets: Any) -> str | None:
    """The Slack webhook from Secrets Manager (or, in local mode only, SLACK_WEBHOOK_URL); None: no Slack."""
    if config.slack_secret_arn:
        secret = secrets.get_secret_value(SecretId=config.slack_secret_arn)
        url = slack.webhook_url_from_secret(str(secret.get("SecretString") or ""))
        if url is None:
            logger.info("the Slack secret holds no webhook URL yet; Slack skipped (see README: Slack)")
        return url
    return config.slack_webhook_url


def notify_status(detail: dict[str, Any], *, sagemaker: Any, s3: Any, sns: Any, config: NotifierConfig,
                  webhook: WebhookLookup, post: Callable[..., slack.Delivery] = slack.post,
                  slack_deadline: float | None = None, prices: PriceList | None = None) -> dict[str, Any]:
    """Send one status change by email, then to Slack. Returns what was sent (JSON-able, for the dedupe record).

    The email goes first so nothing Slack does can delay or stop it; `slack_deadline` (seconds) bounds
    the whole Slack delivery, so the function ends before Lambda's timeout (a timed-out invocation is
    retried, which would mail the team twice).
    """
    status = str(detail.get("currentPipelineExecutionStatus", ""))
    arn = str(detail.get("pipelineExecutionArn", ""))
    if status not in NOTIFY_STATUSES or not arn:
        return {"sent": False, "reason": f"status {status or '?'} is not notified"}
    if status == "Executing" and described_status(sagemaker, arn) in TERMINAL_STATUSES:
        # A late "Executing" after the end: the terminal message says more and came first.
        return {"sent": False, "reason": "stale Executing event for a finished execution"}
    report = gather_report(detail, sagemaker=sagemaker, s3=s3, region=config.region, prices=prices)
    subject, body = email(report)
    publish(sns, config.notify_topic_arn, subject, body, f"pipeline-{status.lower()}", dataset=report.dataset)
    slack_result = send_to_slack(report, webhook=webhook, post=post, config=config, deadline=slack_deadline)
    logger.info("notified", extra={"status": status, "execution": arn, "slack": slack_result})
    return {"sent": True, "status": status, "execution_arn": arn, "slack": slack_result}


def send_to_slack(report: ExecutionReport, *, webhook: WebhookLookup, post: Callable[..., slack.Delivery],
                  config: NotifierConfig, deadline: float | None) -> str:
    """Post the report to Slack; never raises (the email is already out). Returns what happened, in
    words that hold neither the webhook URL nor any other secret value."""
    return send_message(slack_message(report), webhook=webhook, post=post, config=config, deadline=deadline)


def send_message(payload: dict[str, Any], *, webhook: WebhookLookup, post: Callable[..., slack.Delivery],
                 config: NotifierConfig, deadline: float | None) -> str:
    """Post one Block Kit payload to the webhook; never raises (see send_to_slack)."""
    try:
        url = webhook()
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
        logger.error("could not read the Slack webhook secret: %s %s", type(error).__name__, code)
        return "failed: the Slack secret could not be read"
    if not url:
        return "not configured"
    try:
        delivery = post(url, payload, timeout=config.slack_timeout_seconds,
                        max_attempts=config.slack_max_attempts, deadline=deadline)
    except slack.SlackDeliveryFailed as error:
        logger.error("Slack notification failed: %s", error)
        return f"failed: {error}"
    except Exception as error:  # noqa: BLE001
        # Raising now would make Lambda retry the whole event and mail the team again; the error's
        # own text may quote the URL, so only its type is told.
        logger.error("Slack notification failed unexpectedly: %s", type(error).__name__)
        return f"failed: unexpected {type(error).__name__}"
    return f"delivered after {delivery.attempts} attempt(s)"
