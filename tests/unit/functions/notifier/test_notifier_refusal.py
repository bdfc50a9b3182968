"""A refused dataset reaches Slack: the trigger's "Dataset Refused" event becomes one message with
the problems, however often EventBridge delivers it."""

from __future__ import annotations

import copy

from function_harness import Aws, LambdaContext, load_event
from notifier_harness import all_text, use_slack


def test_refusal_event_posts_the_problems_to_slack_once(aws: Aws, slack_server) -> None:
    """GIVEN the Slack webhook configured
    WHEN the trigger's Dataset Refused event arrives, and EventBridge delivers it again
    THEN Slack gets one message naming the dataset, each problem and what to do, with a text
    fallback; no email is sent from here (the trigger sent it)."""
    from function_harness import load_handler

    use_slack(aws, slack_server, 200)
    handler = load_handler("notifier")
    event = load_event("dataset_refused")

    first = handler.lambda_handler(copy.deepcopy(event), LambdaContext())
    again = handler.lambda_handler(copy.deepcopy(event), LambdaContext())

    assert first["sent"] is True and again == first
    [message] = slack_server.received
    text = all_text(message)
    for expected in ("Dataset refused: shapes", "`download` is not allowed", "class id 7 but data.yaml has 3 names",
                     "yolopipe dataset validate"):
        assert expected in text, expected
    assert "shapes" in message["text"] and "download" in message["text"]
    assert aws.inbox() == []
