"""Answer CloudFormation exactly once, whatever happens: SUCCESS, or FAILED with a reason, also when
the work raises (SystemExit included) or the Lambda is about to time out. A custom resource that
never answers leaves the stack waiting until its ServiceTimeout (an hour by default).

The answer is a JSON document PUT to the request's pre-signed S3 URL: at most 4,096 bytes once
encoded (the reason is cut to fit, by bytes, not characters), retried on 5xx and connection errors
with backoff while the Lambda has time left.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from yolopipe_shared.errors import YolopipeError

SUCCESS = "SUCCESS"
FAILED = "FAILED"
#: CloudFormation refuses a larger response body.
RESPONSE_LIMIT_BYTES = 4096
#: What a cut reason ends with.
_CUT = " [...]"
#: Stop sending this long before the Lambda's deadline (the runtime needs a moment to wrap up).
_DEADLINE_SLACK_SECONDS = 1.0
_FIRST_BACKOFF_SECONDS = 0.5
_MAX_BACKOFF_SECONDS = 8.0
_ATTEMPT_TIMEOUT_SECONDS = 10.0
#: Marks the physical id a failed Create answers with: it names no pipeline, so the rollback's
#: Delete (which carries it) has nothing to delete.
_NOT_CREATED = "-not-created-"


class ResponseNotSent(YolopipeError):
    """CloudFormation's response URL did not take the answer (the stack waits for ServiceTimeout)."""


class Log(Protocol):
    def info(self, msg: object, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: Any, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None: ...


def not_created_id(event: Mapping[str, Any]) -> str:
    """The physical id a failed Create answers with: `Pipeline-not-created-1a2b3c4d`."""
    return f"{event.get('LogicalResourceId') or 'Pipeline'}{_NOT_CREATED}{str(event.get('RequestId', ''))[:8]}"


def is_not_created(physical_id: str) -> bool:
    """Did a failed Create answer with this id (so there is nothing behind it to delete)?"""
    return _NOT_CREATED in physical_id


def failure_id(event: Mapping[str, Any]) -> str:
    """The id to answer FAILED with: the existing resource's, or (a failed Create) a not-created one."""
    return str(event.get("PhysicalResourceId") or "") or not_created_id(event)


def encode(body: Mapping[str, Any]) -> bytes:
    """The bytes PUT to CloudFormation (ASCII JSON: non-ASCII characters as \\u escapes)."""
    return json.dumps(body).encode()


def response_body(
    event: Mapping[str, Any],
    status: str,
    *,
    physical_resource_id: str,
    data: Mapping[str, str] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """The JSON CloudFormation expects, its reason cut so the encoded body fits in 4,096 bytes."""
    body: dict[str, Any] = {
        "Status": status,
        "Reason": "",
        "PhysicalResourceId": physical_resource_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    if len(encode(body)) > RESPONSE_LIMIT_BYTES:  # only Data can be this large: answer without it
        body.update(Status=FAILED, Data={})
        reason = f"the deploy function's answer exceeds {RESPONSE_LIMIT_BYTES} bytes; {status}: {reason}"
    body["Reason"] = _fit(body, " ".join((reason or status).split()))
    return body


def _fit(body: dict[str, Any], reason: str) -> str:
    """The longest prefix of `reason` (marked as cut) that keeps the encoded body within the limit."""

    def fits(candidate: str) -> bool:
        return len(encode({**body, "Reason": candidate})) <= RESPONSE_LIMIT_BYTES

    if fits(reason):
        return reason
    low, high = 0, len(reason)  # invariant: reason[:low] + _CUT fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(reason[:middle] + _CUT):
            low = middle
        else:
            high = middle - 1
    return reason[:low] + _CUT


def put(url: str, payload: bytes, *, timeout: float) -> int:
    """One PUT to the pre-signed URL (an empty content type: it is part of the signature)."""
    if not url.startswith(("https://", "http://")):
        raise ResponseNotSent(f"ResponseURL must be an http(s) URL, got {url[:40]!r}")
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked above
        url, data=payload, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(payload))}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return int(response.status)


def send(
    url: str,
    payload: bytes,
    *,
    deadline: float,
    attempts: int,
    log: Log,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """PUT with retries on 5xx and connection errors (backoff 0.5 s, 1 s, 2 s...) until `deadline`
    (a `clock` time); a 4xx is final (an expired or altered pre-signed URL stays so). The HTTP status."""
    for attempt in range(1, attempts + 1):
        left = deadline - clock()
        if left <= 0:
            raise ResponseNotSent(f"no time left to answer CloudFormation (attempt {attempt} of {attempts})")
        try:
            return put(url, payload, timeout=min(_ATTEMPT_TIMEOUT_SECONDS, left))
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise ResponseNotSent(f"CloudFormation's response URL answered HTTP {exc.code}") from exc
            problem = f"HTTP {exc.code}"
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, DNS (URLError too)
            problem = f"{type(exc).__name__}: {exc}"
        backoff = min(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS)
        if attempt == attempts or clock() + backoff >= deadline:
            raise ResponseNotSent(f"could not answer CloudFormation after {attempt} attempt(s): {problem}")
        log.warning("CloudFormation response not taken, retrying", extra={"attempt": attempt, "problem": problem})
        sleep(backoff)
    raise ResponseNotSent("attempts must be at least 1")


class Responder:
    """Sends at most one answer: the work's, or the safety timer's, whichever comes first."""

    def __init__(self, event: Mapping[str, Any], *, deadline: float, attempts: int, log: Log) -> None:
        self._event = event
        self._deadline = deadline
        self._attempts = attempts
        self._log = log
        self._lock = threading.Lock()
        self._delivered = threading.Event()
        self.sent: dict[str, Any] | None = None

    def answer(
        self, status: str, *, physical_resource_id: str, data: Mapping[str, str] | None = None, reason: str = ""
    ) -> dict[str, Any] | None:
        """Send `status` unless an answer was given already; the body sent, or None."""
        with self._lock:
            if self.sent is not None:
                return None
            self.sent = response_body(
                self._event, status, physical_resource_id=physical_resource_id, data=data, reason=reason
            )
        try:
            url = self._event.get("ResponseURL")
            if url:
                send(str(url), encode(self.sent), deadline=self._deadline - _DEADLINE_SLACK_SECONDS,
                     attempts=self._attempts, log=self._log)
            self._log.info("answered CloudFormation", extra={"status": self.sent["Status"],
                                                             "physical_resource_id": physical_resource_id})
        except ResponseNotSent as exc:  # nothing else can answer: say so where an operator looks
            self._log.error("could not answer CloudFormation", extra={"reason": str(exc)})
        finally:
            self._delivered.set()
        return self.sent

    def wait_delivered(self) -> None:
        """Block until the answer given (maybe on the timer's thread) has been sent or given up."""
        self._delivered.wait(timeout=max(self._deadline - time.monotonic(), 0.0))


def describe(exc: BaseException) -> str:
    """The reason CloudFormation shows: our refusals as they are, anything else with its type."""
    if isinstance(exc, YolopipeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def answer_cloudformation(
    event: Mapping[str, Any],
    context: Any,
    work: Callable[[], tuple[str, Mapping[str, str]]],
    *,
    timeout_margin_seconds: float,
    attempts: int,
    log: Log,
) -> dict[str, Any]:
    """Run `work` (-> physical id, data) and answer CloudFormation once; the body answered.

    A timer answers FAILED `timeout_margin_seconds` before the Lambda's deadline if `work` is still
    running. Everything `work` raises, SystemExit included, is answered FAILED with its reason and
    not raised again: a raising async invocation would be retried and answer a second time.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    seconds_left = remaining() / 1000.0 if callable(remaining) else 900.0
    deadline = time.monotonic() + seconds_left
    responder = Responder(event, deadline=deadline, attempts=attempts, log=log)
    timer = threading.Timer(
        max(seconds_left - timeout_margin_seconds, 0.0),
        responder.answer,
        args=(FAILED,),
        kwargs={
            "physical_resource_id": failure_id(event),
            "reason": f"the deploy function ran out of time after {seconds_left - timeout_margin_seconds:.0f} s "
            "(see its CloudWatch logs)",
        },
    )
    timer.daemon = True
    timer.start()
    try:
        physical_id, data = work()
    except BaseException as exc:  # noqa: BLE001 - every failure must reach CloudFormation, exits included
        log.exception("deploy request failed", extra={"reason": describe(exc)})
        responder.answer(FAILED, physical_resource_id=failure_id(event), reason=describe(exc))
    else:
        responder.answer(SUCCESS, physical_resource_id=physical_id, data=data)
    finally:
        timer.cancel()
    responder.wait_delivered()
    return dict(responder.sent or {})
