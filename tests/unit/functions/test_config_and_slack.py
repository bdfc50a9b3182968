"""Configuration read once with one-line errors, and Slack delivery rules on their own."""

from __future__ import annotations

import pytest

from yolopipe_shared import slack
from yolopipe_shared.config import ConfigurationError, NotifierConfig, TriggerConfig

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


def test_slack_retry_after_is_honoured_but_capped(slack_server) -> None:
    """GIVEN Slack answering 429 then 200 WHEN posting THEN the wait respects Retry-After (0 here) and it lands."""
    slack_server.script[:] = [429, 200]
    waits: list[float] = []
    delivery = slack.post(slack_server.url, {"text": "hi"}, timeout=1, max_attempts=3, sleep=waits.append)
    assert delivery.attempts == 2 and len(waits) == 1 and waits[0] <= slack.MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize("secret,expected", [
    ("https://hooks.slack.com/services/T/B/X", "https://hooks.slack.com/services/T/B/X"),
    ('{"webhook_url": "https://hooks.slack.com/services/T/B/X"}', "https://hooks.slack.com/services/T/B/X"),
    ("set-me: aws secretsmanager put-secret-value --secret-string <webhook URL>", None),
    ("file:///etc/passwd", None),
])
def test_webhook_url_from_secret(secret: str, expected: str | None) -> None:
    assert slack.webhook_url_from_secret(secret) == expected
