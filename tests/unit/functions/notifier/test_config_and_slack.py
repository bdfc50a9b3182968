"""Configuration read once with one-line errors, and Slack delivery rules on their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import slack
from notifier_config import NotifierConfig
from trigger_config import TriggerConfig

from yolopipe_shared.config import ConfigurationError

BASE = {"PIPELINE_NAME": "p", "IDEMPOTENCY_TABLE": "t", "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}


def test_trigger_config_defaults_and_cap() -> None:
    """GIVEN only the three required variables plus MAX_EPOCHS THEN the rest takes documented defaults."""
    config = TriggerConfig.from_env({**BASE, "MAX_EPOCHS": "300"})
    assert config.max_epochs == 300 and config.dataset_prefix == "datasets/"
    assert TriggerConfig.from_env({**BASE, "DATASET_PREFIX": "data"}).dataset_prefix == "data/"


@pytest.mark.parametrize("env,message", [
    ({**BASE, "MAX_EPOCHS": "lots"}, "MAX_EPOCHS must be an integer"),
    ({k: v for k, v in BASE.items() if k != "NOTIFY_TOPIC_ARN"}, "NOTIFY_TOPIC_ARN is not set"),
])
def test_bad_configuration_is_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        TriggerConfig.from_env(env)
    assert "\n" not in str(caught.value)


def test_notifier_config_never_shows_the_webhook() -> None:
    """GIVEN a local-mode webhook URL WHEN the config is printed or logged THEN the URL is hidden."""
    config = NotifierConfig.from_env({**BASE, "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/SECRET"})
    assert "SECRET" not in repr(config) and "SECRET" not in str(config)


def test_slack_4xx_is_final_and_not_retried(slack_server) -> None:
    """GIVEN a revoked webhook (Slack answers 404) WHEN a message is posted THEN one attempt, one clear error."""
    slack_server.script[:] = [404]
    with pytest.raises(slack.SlackDeliveryFailed, match="HTTP 404"):
        slack.post(slack_server.url, {"text": "hi"}, timeout=1, max_attempts=4, sleep=lambda s: None)
    assert len(slack_server.received) == 1


@pytest.mark.parametrize("retry_after,least,most", [
    ("0", 0.0, 0.5),  # no wait asked: the backoff alone (0.5 s at most on the first retry)
    ("3", 3.0, 3.0),
    ("99999999999999999999", slack.MAX_RETRY_AFTER_SECONDS, slack.MAX_RETRY_AFTER_SECONDS),
    ("1e400", slack.MAX_RETRY_AFTER_SECONDS, slack.MAX_RETRY_AFTER_SECONDS),
    ("-30", 0.0, 0.5),
    ("nan", 0.0, 0.5),
    ("soon", 0.0, 0.5),
    ("Fri, 31 Dec 9999 23:59:59 GMT", slack.MAX_RETRY_AFTER_SECONDS, slack.MAX_RETRY_AFTER_SECONDS),
    ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0, 0.5),
])
def test_slack_retry_after_is_honoured_but_capped(slack_server, retry_after: str, least: float, most: float) -> None:
    """GIVEN Slack answering 429 with any Retry-After, then 200 WHEN posting with time to spare
    THEN the wait honours it within [backoff, 10 s] (nonsense falls back to the backoff) and it lands."""
    slack_server.script[:] = [429, 200]
    slack_server.retry_after = retry_after
    waits: list[float] = []
    delivery = slack.post(slack_server.url, {"text": "hi"}, timeout=20, max_attempts=2, sleep=waits.append)
    assert delivery.attempts == 2
    [wait] = waits
    assert least <= wait <= most


def test_slack_gives_up_at_once_when_retry_after_passes_the_deadline(slack_server) -> None:
    """GIVEN Slack asking to come back in 10 s WHEN only 2 s are left THEN post gives up now, saying
    so, rather than wait past its deadline."""
    slack_server.script[:] = [429]
    slack_server.retry_after = "10"
    waits: list[float] = []
    with pytest.raises(slack.SlackDeliveryFailed, match="HTTP 429; the next try .* would pass the 2s deadline"):
        slack.post(slack_server.url, {"text": "hi"}, timeout=1, max_attempts=2, sleep=waits.append)
    assert waits == [] and len(slack_server.received) == 1


@pytest.mark.parametrize("header,seconds", [
    ("7", 7.0), (" 2.5 ", 2.5), ("-1", 0.0), ("1e400", float("inf")), ("nan", None), ("", None), (None, None),
    ("later", None), ("Sun, 29 Nov 2026 12:00:30 GMT", 30.0), ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),
    ("Sun, 99 Nov 2026 12:00:30 GMT", None),
])
def test_retry_after_header_reading(header: str | None, seconds: float | None) -> None:
    """GIVEN a Retry-After value (RFC 9110: seconds or an HTTP-date) THEN the wait it asks for, never
    negative; None (use the backoff) when it cannot be read."""
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
    assert slack.retry_after_seconds(header, now=now) == seconds


@pytest.mark.parametrize("spoil,problem", [
    (lambda u: u.replace("/B000/", "/B000 "), "spaces"),
    (lambda u: u.replace("/B000/", "/B000\n"), "control"),
    (lambda u: u.replace("/B000/", "/B000\x7f"), "control"),
    (lambda u: u + "\u00e9", "non-ASCII"),
    (lambda u: u.replace("127.0.0.1:", "127.0.0.1:port"), "not a valid URL"),
    (lambda u: u.replace("127.0.0.1:", "[127.0.0.1:"), "not a valid URL"),
    (lambda u: u.replace("http://", "ftp://"), "not an https:// URL"),
    (lambda u: u.replace("http://127.0.0.1:", "http://:"), "names no host"),
])
def test_malformed_webhook_is_refused_before_sending_and_never_quoted(slack_server, spoil, problem: str) -> None:
    """GIVEN a webhook URL damaged when pasted into the secret WHEN a message is posted THEN nothing is
    sent and the error names the problem, never the URL or any piece of it."""
    with pytest.raises(slack.SlackDeliveryFailed, match=problem) as caught:
        slack.post(spoil(slack_server.url), {"text": "hi"}, timeout=1, max_attempts=2, sleep=lambda s: None)
    assert slack_server.received == []
    for part in ("XXXXSECRETXXXX", "T000", "B000", "127.0.0.1"):
        assert part not in str(caught.value) and part not in repr(caught.value)


def test_a_parsed_webhook_never_shows_itself() -> None:
    """GIVEN a parsed webhook WHEN printed or logged THEN nothing of the URL shows."""
    hook = slack.parse_webhook("https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")
    assert hook.https and hook.port == 443 and hook.target.endswith("XXXXSECRETXXXX")
    assert "SECRET" not in repr(hook) and "SECRET" not in str(hook) and "hooks" not in repr(hook)


@pytest.mark.parametrize("secret,expected", [
    ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/services/T/B/X"),
    ('{"webhook_url": "https://hooks.slack.com/services/T/B/X"}', "https://hooks.slack.com/services/T/B/X"),
    ("set-me: aws secretsmanager put-secret-value --secret-string <webhook URL>", None),
    ("file:///etc/passwd", None),
])
def test_webhook_url_from_secret(secret: str, expected: str | None) -> None:
    assert slack.webhook_url_from_secret(secret) == expected
