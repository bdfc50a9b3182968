"""Promise: whatever Slack does, the team gets the email, the notifier returns within its Slack
deadline, and the webhook URL appears in no log line, error or result.

Each test points the stack's Slack secret at a stand-in on 127.0.0.1 that misbehaves one way
(refuses, resets, stalls, trickles a byte a second, answers garbage, rate-limits with every kind of
Retry-After, fails then recovers) and runs the real handler on a Failed event against moto. The
deadline is SLACK_TIMEOUT_SECONDS x SLACK_MAX_ATTEMPTS; each misbehaviour, unhandled, would hold
the function far longer than the margin allowed here (a stall 30 s, a trickle 40 s, a huge
Retry-After at least its 10 s cap).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import slack
from function_harness import Aws, LambdaContext, load_handler
from notifier_harness import answer_steps, failed_steps, set_status, start_execution, status_event

#: What the calls around Slack (moto: describe, list, publish, the idempotency record) may add on a busy
#: machine; every misbehaviour here, unhandled, holds the function 10 s or more past its deadline.
AWS_MARGIN_SECONDS = 4.0
SECRET_PARTS = ("XXXXSECRETXXXX", "/services/T000", "127.0.0.1")


def notify_failed_run(aws: Aws, webhook: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                      capsys: pytest.CaptureFixture[str], *, timeout: int = 1, attempts: int = 2,
                      context: LambdaContext | None = None) -> dict[str, Any]:
    """GIVEN-side plumbing: the secret holds `webhook`, an execution failed at the quality gate; WHEN
    its event arrives. Returns the result, the seconds it took, the deadline and everything logged."""
    monkeypatch.setenv("SLACK_TIMEOUT_SECONDS", str(timeout))
    monkeypatch.setenv("SLACK_MAX_ATTEMPTS", str(attempts))
    aws.secrets.put_secret_value(SecretId=aws.secret_arn, SecretString=json.dumps({"webhook_url": webhook}))
    handler = load_handler("notifier")
    arn = start_execution(aws)
    set_status(arn, "Failed")
    answer_steps(handler, failed_steps())
    caplog.set_level(logging.INFO)
    for ours in ("slack", "notify"):  # our own modules even at DEBUG (botocore's DEBUG prints secrets by design)
        caplog.set_level(logging.DEBUG, logger=ours)

    started = time.monotonic()
    result = handler.lambda_handler(status_event("pipeline_failed", arn), context or LambdaContext())
    elapsed = time.monotonic() - started

    captured = capsys.readouterr()
    return {"result": result, "elapsed": elapsed, "deadline": timeout * attempts,
            "logs": caplog.text + captured.out + captured.err + json.dumps(result)}


def assert_promise_kept(aws: Aws, run: dict[str, Any]) -> None:
    """THEN the email is in the inbox, the call returned within its deadline, and nothing leaked."""
    assert run["result"]["sent"] is True
    [mail] = aws.inbox()
    assert "Training failed: shapes" in mail["subject"]
    assert "Failed step: QualityGateFailed" in mail["message"]
    assert run["elapsed"] < run["deadline"] + AWS_MARGIN_SECONDS, run["elapsed"]
    for part in SECRET_PARTS:
        assert part not in run["logs"], part


# --------------------------------------------------------------------------- the connection misbehaves
@pytest.mark.parametrize("misbehaviour,why", [
    ("reset", "connection reset"),
    ("garbage", "not an HTTP reply"),
])
def test_broken_connections_never_stop_the_email(aws: Aws, slack_server, monkeypatch, caplog, capsys,
                                                 misbehaviour, why) -> None:
    """GIVEN a Slack endpoint that resets the connection or answers bytes that are not HTTP WHEN a
    failure is notified THEN both attempts fail for that reason, the email goes out, and the function
    returns within its 2 s Slack deadline."""
    slack_server.script[:] = [misbehaviour]

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys)

    assert_promise_kept(aws, run)
    assert run["result"]["slack"].startswith("failed") and why in run["result"]["slack"]
    assert len(slack_server.received) == 2


def test_the_email_is_out_before_a_stalled_slack_is_given_up(aws: Aws, slack_server, monkeypatch, caplog,
                                                              capsys) -> None:
    """GIVEN a Slack endpoint that takes the request and then says nothing for 30 s WHEN a failure is
    notified THEN the email is already in the inbox while Slack is being waited on, and the function
    gives Slack up at its 2 s deadline."""
    slack_server.hang_seconds = 30.0
    slack_server.script[:] = ["hang"]
    runs: list[dict[str, Any]] = []
    notifier = threading.Thread(target=lambda: runs.append(notify_failed_run(aws, slack_server.url, monkeypatch,
                                                                             caplog, capsys)))
    notifier.start()
    waited = time.monotonic()
    while not slack_server.received and time.monotonic() - waited < 20:
        time.sleep(0.01)
    waiting_on_slack = notifier.is_alive()
    queued = aws.sqs.get_queue_attributes(QueueUrl=aws.inbox_url, AttributeNames=["ApproximateNumberOfMessages"])
    notifier.join(30)

    assert waiting_on_slack and queued["Attributes"]["ApproximateNumberOfMessages"] == "1"
    [run] = runs
    assert_promise_kept(aws, run)
    assert "timeout" in run["result"]["slack"] and len(slack_server.received) == 2


def test_slack_stops_in_time_for_the_lambda_to_finish(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN Slack stalling and an invocation with only 12 s left (Slack's own budget: 5 s x 4)
    WHEN a failure is notified THEN Slack is given up with the notifier's 10 s reserve still left, so
    the invocation ends in time (a timed-out one is retried and would mail the team twice)."""
    slack_server.hang_seconds = 30.0
    slack_server.script[:] = ["hang"]
    context = LambdaContext(timeout_ms=12_000)

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys, timeout=5, attempts=4, context=context)

    assert "timeout" in run["result"]["slack"]
    assert context.get_remaining_time_in_millis() > 10_000 - AWS_MARGIN_SECONDS * 1000
    assert run["elapsed"] < 2 + AWS_MARGIN_SECONDS
    [mail] = aws.inbox()
    assert "Training failed: shapes" in mail["subject"]


def test_refused_connection_never_stops_the_email(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN a webhook host where nothing listens WHEN a failure is notified THEN Slack fails as
    "connection refused", the email goes out, and the function returns in time."""
    run = notify_failed_run(aws, slack_server.refused_url, monkeypatch, caplog, capsys)

    assert_promise_kept(aws, run)
    assert "connection refused" in run["result"]["slack"]


def test_a_trickling_reply_is_cut_at_the_deadline(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN Slack sending its reply one byte a second (each read succeeds well within a per-read
    timeout of 2 s, so a per-read timeout would wait out the whole 40 s reply) WHEN a failure is
    notified THEN the delivery is cut at its 2 s total deadline and the email goes out."""
    slack_server.trickle_seconds = 1.0
    slack_server.script[:] = ["trickle"]

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys, timeout=2, attempts=1)

    assert_promise_kept(aws, run)
    assert "timeout" in run["result"]["slack"]


# --------------------------------------------------------------------------- Slack answers, but not yes
@pytest.mark.parametrize("retry_after", [
    "99999999999999999999",  # huge
    "-30",  # negative
    "soon",  # not a number
    format_datetime(datetime(9999, 12, 31, tzinfo=UTC), usegmt=True),  # an HTTP-date far ahead
])  # every other odd value: test_config_and_slack.py, on the parser alone
def test_rate_limited_with_any_retry_after_never_stops_the_email(aws: Aws, slack_server, monkeypatch, caplog, capsys,
                                                                 retry_after) -> None:
    """GIVEN Slack answering 429 forever with a huge, negative, unreadable, far-future or empty
    Retry-After WHEN a failure is notified THEN the wait is capped (and given up when it would pass the
    deadline), the function returns in time, and the email goes out."""
    slack_server.retry_after = retry_after
    slack_server.script[:] = [429]

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys)

    assert_promise_kept(aws, run)
    assert "HTTP 429" in run["result"]["slack"]
    assert 1 <= len(slack_server.received) <= 2


def test_retry_after_within_the_deadline_is_honoured(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN Slack answering 429 with Retry-After: 1, then 200 WHEN notified with a 4 s deadline THEN
    the second attempt waits at least that second, lands, and the email goes out."""
    slack_server.retry_after = "1"
    slack_server.script[:] = [429, 200]

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys, timeout=2, attempts=2)

    assert_promise_kept(aws, run)
    assert run["result"]["slack"] == "delivered after 2 attempt(s)"
    assert run["elapsed"] >= 1.0


def test_a_server_error_then_success_is_delivered(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN Slack answering 500 once, then 200 WHEN notified THEN the message lands on the second
    attempt, once, and the email goes out once."""
    slack_server.script[:] = [500, 200]

    run = notify_failed_run(aws, slack_server.url, monkeypatch, caplog, capsys)

    assert_promise_kept(aws, run)
    assert run["result"]["slack"] == "delivered after 2 attempt(s)"
    assert len(slack_server.received) == 2 and "QualityGateFailed" in slack_server.received[1]["text"]


# --------------------------------------------------------------------------- the secret is malformed
def test_malformed_webhook_is_refused_without_quoting_it(aws: Aws, slack_server, monkeypatch, caplog, capsys) -> None:
    """GIVEN a Slack secret whose URL has a space pasted inside WHEN a failure is notified THEN nothing
    is sent to Slack, the result names the problem and the secret but not the URL, and the email goes
    out. (Every other malformed URL: test_config_and_slack.py, on the parser alone.)"""
    run = notify_failed_run(aws, slack_server.refused_url.replace("/B000/", "/B000 "), monkeypatch, caplog, capsys)

    assert_promise_kept(aws, run)
    assert run["result"]["slack"].startswith("failed: the Slack webhook in the Slack secret")


# --------------------------------------------------------------------------- below HTTP: TLS
def test_a_silent_tls_handshake_is_cut_at_the_deadline() -> None:
    """GIVEN an https:// webhook whose host accepts the TCP connection but never answers the TLS
    handshake WHEN a message is posted THEN post gives up within its total deadline, saying why
    without the URL (no HTTP layer ever ran, so only a total deadline can end it)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes the TCP handshake; nobody ever reads or writes
    url = f"https://127.0.0.1:{silent.getsockname()[1]}/services/T000/B000/XXXXSECRETXXXX"
    started = time.monotonic()
    try:
        with pytest.raises(slack.SlackDeliveryFailed, match="timeout") as caught:
            slack.post(url, {"text": "hi"}, timeout=1, max_attempts=2, base_delay=0.1)
    finally:
        silent.close()
    assert time.monotonic() - started < 2.5
    assert not any(part in str(caught.value) for part in SECRET_PARTS)


def test_plain_http_where_tls_was_expected_fails_fast(slack_server) -> None:
    """GIVEN an https:// webhook whose server speaks plain HTTP WHEN a message is posted THEN each
    attempt fails as a TLS failure (retried, then given up), quickly, without quoting the URL."""
    with pytest.raises(slack.SlackDeliveryFailed, match="TLS failed") as caught:
        slack.post(slack_server.url.replace("http://", "https://"), {"text": "hi"}, timeout=1, max_attempts=2,
                   base_delay=0.1)
    assert not any(part in str(caught.value) for part in SECRET_PARTS)
