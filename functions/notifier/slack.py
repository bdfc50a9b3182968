"""Slack incoming webhooks: Block Kit within Slack's limits, delivered with retries under a deadline.

Each attempt (connect, TLS, request, reply) ends within its own limit and the whole delivery,
waits included, within its deadline, however the server behaves: refusing, resetting, stalling,
trickling a byte a second (a timeout per socket read, as urllib's, never fires on a trickle) or
answering something that is not HTTP. Those, 408, 429 and 5xx are retried with exponential backoff
(429 honours Retry-After, capped, and gives up early when the wait would pass the deadline); other
replies are final. The webhook URL is a secret: it never appears in a message, log or error.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import math
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from yolopipe_shared.errors import YolopipeError

logger = logging.getLogger(__name__)

# Slack's Block Kit limits (api.slack.com/reference/block-kit): 50 blocks a message, 3,000 characters
# of section text, 2,000 a field, 10 fields a section, 150 a header; `text` is the notification fallback.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 4000
#: Longest wait honoured from a Retry-After header, so one message cannot eat the Lambda timeout.
MAX_RETRY_AFTER_SECONDS = 10.0
#: Statuses worth another attempt: Slack's rate limit, a request timeout and server errors.
RETRIED_STATUSES = frozenset({408, 429})
#: Slack answers "ok" or a short error code; nothing longer is read.
MAX_REPLY_BYTES = 4096
_SLACK_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


class SlackDeliveryFailed(YolopipeError):
    """Slack did not take the message (the email still goes out). The text never holds the URL."""


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
    return {"text": truncate(text or "yolopipe", MAX_FALLBACK_TEXT), "blocks": blocks[:MAX_BLOCKS]}


# --------------------------------------------------------------------------- the webhook
@dataclass(frozen=True)
class Webhook:
    """A checked webhook URL, split the way a connection needs it. Its repr shows nothing of it."""

    https: bool
    host: str
    port: int
    target: str  # path and query: the secret part

    def __repr__(self) -> str:
        return "Webhook(<secret>)"


def parse_webhook(url: str) -> Webhook:
    """The webhook URL checked before any byte leaves; SlackDeliveryFailed says what is wrong without
    quoting it (http.client's own errors quote the path, which holds the webhook's token)."""
    problem = _url_problem(url)
    if problem:
        raise SlackDeliveryFailed(f"the Slack webhook in the Slack secret {problem}; put the URL Slack gave "
                                  "(https://hooks.slack.com/services/...) in the secret")
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Webhook(https, str(parts.hostname), parts.port or (443 if https else 80), target)


def _url_problem(url: str) -> str:
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "contains spaces, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("https", "http"):
        return "is not an https:// URL"
    if not parts.hostname:
        return "names no host"
    return ""


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
    return text if text.lower().startswith(("https://", "http://")) else None


# --------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Delivery:
    attempts: int
    status: int | None


Sleep = Callable[[float], None]
Clock = Callable[[], float]


def post(url: str, payload: dict[str, Any], *, timeout: float = 5.0, max_attempts: int = 4,
         deadline: float | None = None, base_delay: float = 0.5, sleep: Sleep = time.sleep,
         clock: Clock = time.monotonic) -> Delivery:
    """POST `payload` to a webhook; raise SlackDeliveryFailed when Slack refuses it or time runs out.

    `timeout` bounds one attempt end to end; `deadline` (default `timeout * max_attempts`) bounds the
    whole delivery, waits included, so the caller gets control back in time whatever the server does.
    """
    hook = parse_webhook(url)
    budget = timeout * max_attempts if deadline is None else min(deadline, timeout * max_attempts)
    ends = clock() + budget
    body = json.dumps(payload).encode()
    last, attempt = "no time left to try", 0
    while attempt < max_attempts and (left := ends - clock()) > 0:
        attempt += 1
        reply = _exchange(hook, body, min(timeout, left))
        if reply.status is not None and 200 <= reply.status < 300:
            return Delivery(attempt, reply.status)
        if reply.status is not None and reply.status not in RETRIED_STATUSES and reply.status < 500:
            code = f" ({reply.error_code})" if reply.error_code else ""
            raise SlackDeliveryFailed(f"Slack refused the message (HTTP {reply.status}{code}); check the webhook "
                                      "in the Slack secret")
        last = f"HTTP {reply.status}" if reply.status is not None else reply.failure
        wait = base_delay * 2 ** (attempt - 1) * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not crypto)
        asked = retry_after_seconds(reply.retry_after) if reply.status == 429 else None
        if asked is not None:
            wait = max(wait, min(asked, MAX_RETRY_AFTER_SECONDS))
        if attempt >= max_attempts:
            break
        if clock() + wait >= ends:
            last += f"; the next try ({wait:.1f}s away) would pass the {budget:g}s deadline"
            break
        logger.warning("Slack attempt %d/%d failed (%s); retrying in %.1fs", attempt, max_attempts, last, wait)
        sleep(wait)
    raise SlackDeliveryFailed(f"Slack did not take the message in {attempt} attempt(s) within {budget:g}s "
                              f"(last: {last})")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a Retry-After header asks for (RFC 9110: delay-seconds or an HTTP-date), never negative;
    None when absent or unreadable (the caller's backoff applies). Callers cap it."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return None if math.isnan(seconds) else max(0.0, seconds)


@dataclass(frozen=True)
class _Reply:
    """What one attempt got: an HTTP status (and Retry-After, Slack's error code), or why there was none."""

    status: int | None = None
    retry_after: str | None = None
    error_code: str = ""
    failure: str = ""


_TLS = ssl.create_default_context()


class _Exchange:
    """One POST run in a worker thread, so the caller stops waiting at the limit whatever blocks
    (DNS, connect, TLS handshake, a stalled or trickling reply); at the limit the socket is shut
    down, which ends the worker's blocked call too."""

    def __init__(self, hook: Webhook, body: bytes, limit: float) -> None:
        self.hook, self.body, self.limit = hook, body, limit
        self.done = threading.Event()
        self.reply = _Reply(failure="no reply")
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._aborted = False

    def run(self) -> None:
        try:
            self.reply = self._post()
        except Exception as error:  # noqa: BLE001 (any failure is one failed attempt; its text may hold the URL)
            self.reply = _Reply(failure="timeout" if self._aborted else _describe(error))
        finally:
            with self._lock:
                sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()
            self.done.set()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            if self._sock is not None:  # the plain socket's shutdown: SSLSocket's own drops state under the worker
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self._aborted:
                raise TimeoutError

    def _post(self) -> _Reply:
        hook = self.hook
        sock = socket.create_connection((hook.host, hook.port), timeout=self.limit)
        self._hold(sock)
        connection: http.client.HTTPConnection
        if hook.https:
            sock = _TLS.wrap_socket(sock, server_hostname=hook.host, do_handshake_on_connect=False)
            self._hold(sock)
            sock.do_handshake()
            connection = http.client.HTTPSConnection(hook.host, hook.port, timeout=self.limit, context=_TLS)
        else:
            connection = http.client.HTTPConnection(hook.host, hook.port, timeout=self.limit)
        connection.sock = sock  # connected (and verified) above, under the abort's reach
        connection.request("POST", hook.target, body=self.body,
                           headers={"Content-Type": "application/json; charset=utf-8"})
        response = connection.getresponse()
        text = response.read(MAX_REPLY_BYTES).decode("ascii", "replace").strip()
        return _Reply(status=response.status, retry_after=response.getheader("Retry-After"),
                      error_code=text if _SLACK_ERROR_CODE.fullmatch(text) else "")


def _exchange(hook: Webhook, body: bytes, limit: float) -> _Reply:
    exchange = _Exchange(hook, body, limit)
    threading.Thread(target=exchange.run, name="slack-webhook", daemon=True).start()
    if not exchange.done.wait(limit):
        exchange.abort()
        return _Reply(failure="timeout")
    return exchange.reply


def _describe(error: Exception) -> str:
    """Why an attempt got no HTTP status, in words that never quote the URL."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without a reply"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(error, http.client.HTTPException):
        return f"not an HTTP reply ({type(error).__name__})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({type(error).__name__})"
    if isinstance(error, socket.gaierror):
        return "the webhook's host name did not resolve"
    return type(error).__name__
