"""A refused dataset -> Slack. The trigger already emailed the team through the topic; this posts
the same problems to the channel, so a refusal reaches everyone a training run would reach.

The event is the trigger's "Dataset Refused" (yolopipe_shared.refusal), routed here by template.yaml's
rule; app.py runs this once per refusal record (EventBridge may deliver an event twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import slack
from notifier_config import NotifierConfig
from notify import WebhookLookup, send_message

from yolopipe_shared.refusal import Refusal

logger = logging.getLogger(__name__)

#: Problems listed in the message; the rest are counted (a section holds at most 3,000 characters).
SHOWN_PROBLEMS = 15


def headline(refusal: Refusal) -> str:
    return f"Dataset refused: {refusal.dataset}"


def slack_message(refusal: Refusal) -> dict[str, Any]:
    """Block Kit (header, facts, the problems as a code block, what to do) with its text fallback."""
    lines = refusal.lines()
    shown = lines[:SHOWN_PROBLEMS]
    if len(lines) > SHOWN_PROBLEMS:
        shown.append(f"... and {refusal.problem_count - SHOWN_PROBLEMS} more problem(s)")
    todo = "Fix them and upload data.yaml again (last): `yolopipe dataset validate PATH` lists them all."
    problems = slack.truncate("\n".join(shown), slack.MAX_SECTION_TEXT - 40)
    blocks = [
        slack.header(f"🚫 {headline(refusal)}"),
        *slack.fields([("Dataset", refusal.marker_uri), ("Version", refusal.version),
                       ("Problems", str(refusal.problem_count)), ("Record", refusal.uri)]),
        slack.section(f"*Nothing was trained*\n```{slack.escape(problems)}```"),
        slack.section(slack.escape(todo)),
    ]
    text = f"{headline(refusal)} ({refusal.problem_count} problem(s)): " + "; ".join(lines[:5])
    return slack.message(text, blocks)


def notify_refusal(detail: dict[str, Any], *, config: NotifierConfig, webhook: WebhookLookup,
                   post: Callable[..., slack.Delivery] = slack.post,
                   slack_deadline: float | None = None) -> dict[str, Any]:
    """Post one refusal to Slack; JSON-able result for the dedupe record. A detail that is not a refusal
    is logged and dropped (retrying it would not make it one)."""
    try:
        refusal = Refusal.from_dict(detail)
    except ValueError as error:
        logger.error("not a refusal event: %s", error)
        return {"sent": False, "reason": f"not a refusal: {error}"}
    result = send_message(slack_message(refusal), webhook=webhook, post=post, config=config, deadline=slack_deadline)
    logger.info("refusal notified", extra={"dataset": refusal.dataset, "version": refusal.version, "slack": result})
    return {"sent": True, "refusal": refusal.key, "slack": result}
