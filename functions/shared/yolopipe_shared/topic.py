"""The notification topic: what the trigger (refusals) and the notifier (status emails) publish.
Email subscribers see the subject and the plain-text body."""

from __future__ import annotations

from typing import Any

#: SNS subjects: printable ASCII, one line, under 100 characters.
SUBJECT_MAX = 99


def email_subject(text: str) -> str:
    """An SNS subject from any text: non-ASCII replaced, one line, at most 99 characters."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text.replace("\n", " "))
    return clean if len(clean) <= SUBJECT_MAX else clean[: SUBJECT_MAX - 3] + "..."


def publish(sns: Any, topic_arn: str, subject: str, message: str, event: str, **attributes: str) -> None:
    """Publish one email-ready message; `event` (e.g. dataset-refused) lets subscribers filter."""
    message_attributes = {"event": {"DataType": "String", "StringValue": event}}
    message_attributes.update({k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v})
    sns.publish(TopicArn=topic_arn, Subject=email_subject(subject), Message=message,
                MessageAttributes=message_attributes)
