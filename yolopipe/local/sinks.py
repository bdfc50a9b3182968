"""Where local mode's notifications land: a Slack webhook receiver on 127.0.0.1 and an inbox.

The receiver answers like Slack's incoming webhooks (200 "ok") and keeps every message; `render`
turns Block Kit into the text a person would read in the channel. The inbox is an SQS queue
subscribed to the stack's SNS topic: each message is one email (subject and body).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackReceiver:
    """A local stand-in for a Slack incoming webhook URL."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    self._answer(400, b"invalid_payload")
                    return
                if not isinstance(payload, dict) or not payload.get("text") and not payload.get("blocks"):
                    self._answer(400, b"no_text")
                    return
                with receiver._lock:
                    receiver.messages.append(payload)
                self._answer(200, b"ok")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/services/LOCAL/yolopipe/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-receiver", daemon=True)

    def start(self) -> SlackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take(self) -> list[dict[str, Any]]:
        """The messages received since the last call."""
        with self._lock:
            taken, self.messages = self.messages, []
        return taken


_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def _mrkdwn(text: str) -> str:
    text = _LINK.sub(r"\2 (\1)", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("```", "")


def render(message: dict[str, Any]) -> str:
    """Block Kit as the lines a person sees in the channel (the `text` fallback without blocks)."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(str(block["text"]["text"]))
        elif kind == "section":
            if block.get("text"):
                lines.extend(_mrkdwn(str(block["text"]["text"])).strip().splitlines())
            pairs = [_mrkdwn(str(f.get("text", ""))).split("\n", 1) for f in block.get("fields") or []]
            lines.extend(f"{p[0].strip('*')}: {p[1] if len(p) > 1 else ''}" for p in pairs)
        elif kind == "actions":
            lines.extend(f"[{e['text']['text']}] {e.get('url', '')}" for e in block.get("elements") or [])
        elif kind == "context":
            lines.extend(_mrkdwn(str(e.get("text", ""))) for e in block.get("elements") or [])
    if not lines:
        lines = [_mrkdwn(str(message.get("text", "")))]
    return "\n".join(lines)


@dataclass(frozen=True)
class Email:
    subject: str
    body: str


class Inbox:
    """The SNS topic's email subscribers, as an SQS queue in the emulator."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url

    def take(self) -> list[Email]:
        """Every email delivered so far (removed from the queue)."""
        emails: list[Email] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages") or []
            if not messages:
                return emails
            for message in messages:
                envelope = json.loads(message["Body"])
                emails.append(Email(str(envelope.get("Subject") or "(no subject)"), str(envelope.get("Message", ""))))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
