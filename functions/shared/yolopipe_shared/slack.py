"""Slack incoming webhooks: Block Kit within Slack's limits, delivered with retries.

Timeouts, 429s and 5xxs are retried with exponential backoff (429 honours Retry-After, capped);
other 4xx are final. The webhook URL is a secret: it never appears in a message, log or error.
"""

from __future__ import annotations

import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import YolopipeError

logger = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 4000
#: Longest wait honoured from a Retry-After header, so one message cannot eat the Lambda timeout.
MAX_RETRY_AFTER_SECONDS = 10.0


class SlackDeliveryFailed(YolopipeError):
    """Slack did not take the message after every attempt (the email still goes out)."""


def escape(text: str) -> str:
    """Slack mrkdwn escaping: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER_TEXT), "emoji": True}}


def section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(markdown, MAX_SECTION_TEXT)}}


def fields(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Label/value pairs as section fields, ten per section (Slack's limit)."""
    items = [{"type": "mrkdwn", "text": truncate(f"*{escape(k)}*\n{escape(v)}", MAX_FIELD_TEXT)} for k, v in pairs]
    return [{"type": "section", "fields": items[i:i + MAX_FIELDS]} for i in range(0, len(items), MAX_FIELDS)]


def button(text: str, url: str) -> dict[str, Any]:
    return {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": truncate(text, 75)}, "url": url[:3000]}]}


def message(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A webhook payload: blocks capped at 50, always with a plain `text` fallback."""
    return {"text": truncate(text, MAX_FALLBACK_TEXT), "blocks": blocks[:MAX_BLOCKS]}


@dataclass(frozen=True)
class Delivery:
    attempts: int
    status: int | None


Sleep = Callable[[float], None]


def post(url: str, payload: dict[str, Any], *, timeout: float = 5.0, max_attempts: int = 4,
         base_delay: float = 0.5, sleep: Sleep = time.sleep) -> Delivery:
    """POST `payload` to a webhook, retrying timeouts, 429 and 5xx; raise SlackDeliveryFailed at the end."""
    if not url.startswith(("https://", "http://")):
        raise SlackDeliveryFailed("the Slack webhook is not an https:// URL; fix the Slack secret")
    body = json.dumps(payload).encode()
    last = "no attempt"
    for attempt in range(1, max_attempts + 1):
        wait = base_delay * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (scheme checked above)
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
                response.read()
                return Delivery(attempt, response.status)
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
            if status != 429 and status < 500:
                raise SlackDeliveryFailed(f"Slack refused the message (HTTP {status}); check the webhook in "
                                          "the Slack secret") from None
            last = f"HTTP {status}"
            if status == 429:
                wait = max(wait, min(_retry_after(error.headers.get("Retry-After")), MAX_RETRY_AFTER_SECONDS))
        except TimeoutError:
            last = "timeout"
        except urllib.error.URLError as error:
            # The reason is an OSError (refused, DNS...); its text never holds the URL.
            last = "timeout" if isinstance(error.reason, TimeoutError) else type(error.reason).__name__
        if attempt < max_attempts:
            logger.warning("Slack attempt %d/%d failed (%s); retrying in %.1fs", attempt, max_attempts, last, wait)
            sleep(wait)
    raise SlackDeliveryFailed(f"Slack did not take the message after {max_attempts} attempts (last: {last})")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def webhook_url_from_secret(secret_string: str) -> str | None:
    """The webhook URL in a secret: the plain URL or JSON `{"webhook_url": ...}`; None when it holds
    no URL yet (the stack creates the secret with a placeholder for the user to replace)."""
    text = secret_string.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        text = str(data.get("webhook_url") or data.get("url") or "").strip() if isinstance(data, dict) else ""
    return text if text.startswith(("https://", "http://")) else None
