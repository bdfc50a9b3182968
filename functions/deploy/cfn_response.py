"""Answer CloudFormation, always: SUCCESS or FAILED with a reason, exactly once, also when the
handler raises or the Lambda is about to time out (a custom resource that never answers leaves
the stack waiting for an hour)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

SUCCESS = "SUCCESS"
FAILED = "FAILED"
#: Answer this long before the Lambda's deadline if the work has not finished.
TIMEOUT_MARGIN_SECONDS = 15.0
_REASON_LIMIT = 3000  # keep the whole body well under the 4 KB CloudFormation accepts


def response_body(
    event: Mapping[str, Any],
    status: str,
    *,
    physical_resource_id: str,
    data: Mapping[str, str] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """The JSON CloudFormation expects at the pre-signed ResponseURL."""
    return {
        "Status": status,
        "Reason": (reason or status)[:_REASON_LIMIT],
        "PhysicalResourceId": physical_resource_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": dict(data or {}),
    }


def send(url: str, body: Mapping[str, Any], *, timeout: float = 10.0) -> int:
    """PUT the body to the pre-signed S3 URL (no content type: it is part of the signature)."""
    payload = json.dumps(body).encode()
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL must be an http(s) URL, got {url[:40]!r}")
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked above
        url, data=payload, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(payload))}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return int(response.status)


class Responder:
    """Sends at most one answer; arms a timer that answers FAILED just before the deadline."""

    def __init__(
        self,
        event: Mapping[str, Any],
        *,
        remaining_ms: Callable[[], int] | None = None,
        sender: Callable[[str, Mapping[str, Any]], int] = send,
        log: Callable[[str], None] = print,
        failure_id: str = "",
    ) -> None:
        self._event = event
        self._failure_id = failure_id or str(event.get("PhysicalResourceId") or "not-created")
        self._sender = sender
        self._log = log
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None
        if remaining_ms is not None:
            delay = max(remaining_ms() / 1000.0 - TIMEOUT_MARGIN_SECONDS, 0.5)
            self._timer = threading.Timer(delay, self._on_timeout)
            self._timer.daemon = True
            self._timer.start()

    def _on_timeout(self) -> None:
        self.answer(
            FAILED,
            physical_resource_id=self._failure_id,
            reason="the deploy function ran out of time (see its CloudWatch logs)",
        )

    def answer(
        self,
        status: str,
        *,
        physical_resource_id: str,
        data: Mapping[str, str] | None = None,
        reason: str = "",
    ) -> dict[str, Any] | None:
        """Send once; later calls (the timer after the handler, or vice versa) do nothing."""
        with self._lock:
            if self.sent is not None:
                return None
            body = response_body(
                self._event, status, physical_resource_id=physical_resource_id, data=data, reason=reason
            )
            self.sent = body
        if self._timer is not None:
            self._timer.cancel()
        url = self._event.get("ResponseURL")
        if url:
            try:
                self._sender(str(url), body)
            except Exception as exc:  # noqa: BLE001 - nothing else can answer; say so in the logs
                self._log(f"could not send the CloudFormation response: {exc!r}")
        return body

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
