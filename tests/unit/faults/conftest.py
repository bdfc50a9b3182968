"""The fault suite: one file per promise, each test one misbehaviour of the world that must not
break it. The world is the functions' harness (tests/unit/functions/function_harness.py): moto for
AWS, a Slack stand-in on 127.0.0.1, handlers loaded as Lambda loads them (their folder on sys.path)."""

import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries import standard
from moto.core.models import botocore_stubber

_UNIT = Path(__file__).resolve().parents[1]
for _folder in (_UNIT / "functions", _UNIT.parents[1] / "functions" / "notifier"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from function_harness import aws, slack_server  # noqa: E402, F401 (pytest fixtures)


# --------------------------------------------------------------------------- AWS answering on the wire
class _Raw:
    """The raw body botocore reads an HTTP response from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


def _error(protocol: str, code: str, method: str) -> tuple[dict[str, str], bytes]:
    """An error as the service's wire protocol carries it (HEAD answers have no body: botocore then
    names the error by its HTTP status, as it does for a real S3 HeadObject)."""
    if protocol == "json":
        return ({"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "injected"},
                json.dumps({"__type": code, "message": "injected fault"}).encode())
    if method == "HEAD":
        return {}, b""
    if protocol == "query":
        return {"Content-Type": "text/xml"}, (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected fault</Message>"
            "</Error><RequestId>injected</RequestId></ErrorResponse>").encode()
    return {"Content-Type": "application/xml"}, (
        f"<Error><Code>{code}</Code><Message>injected fault</Message><RequestId>injected</RequestId></Error>").encode()


Route = Callable[[str, Any], AWSResponse | None]


class AwsWire:
    """What AWS answers a client's HTTP requests: routes in front of moto, consulted per attempt in
    order (operation name, request) -> response or None (moto answers). Everything happens on the wire
    (botocore's `before-send`), so botocore parses the answer and applies its own retries (standard
    mode: throttling codes and 500/502/503/504) exactly as against AWS."""

    @staticmethod
    def routes(client: Any) -> list[Route]:
        known: list[Route] | None = client.__dict__.get("_aws_wire_routes")
        if known is None:
            routes: list[Route] = []
            client.__dict__["_aws_wire_routes"] = routes

            def send(event_name: str, request: Any, **kwargs: Any) -> Any:
                operation = event_name.rsplit(".", 1)[-1]
                for route in list(routes):
                    response = route(operation, request)
                    if response is not None:
                        return response
                return botocore_stubber(event_name=event_name, request=request, **kwargs)

            # One answer per attempt: moto's own handler only runs when no route answered.
            client.meta.events.unregister("before-send", botocore_stubber)
            client.meta.events.register("before-send", send)
            return routes
        return known

    def fails(self, client: Any, operation: str, code: str, status: int, *, times: int) -> list[str]:
        """AWS answers the next `times` attempts at `operation` with error `code` and HTTP `status`;
        returns the attempts so answered (one entry each)."""
        answered: list[str] = []
        protocol = client.meta.service_model.protocol

        def route(name: str, request: Any) -> AWSResponse | None:
            if name != operation or len(answered) >= times:
                return None
            answered.append(code)
            headers, body = _error(protocol, code, request.method)
            return AWSResponse(request.url, status, headers, _Raw(body))

        self.routes(client).insert(0, route)
        return answered

    def answers(self, client: Any, operation: str, document: dict[str, Any]) -> None:
        """AWS answers `operation` with `document` (JSON protocols; what moto does not implement)."""
        body = json.dumps(document, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)).encode()

        def route(name: str, request: Any) -> AWSResponse | None:
            if name != operation:
                return None
            return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))

        self.routes(client).append(route)


@pytest.fixture
def aws_wire(monkeypatch: pytest.MonkeyPatch) -> AwsWire:
    """AWS's answers on the wire; botocore still retries, without waiting out its backoff (up to a
    second per throttled attempt: botocore's time, not what these tests are about)."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    return AwsWire()
