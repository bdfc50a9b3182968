"""Small-file PUTs without botocore's per-call machinery: signed by botocore's own S3 signer, sent on
the client's own HTTP session.

Why: `put_object` costs about 2 ms of Python per file (parameter validation, serialisation, endpoint
rules, a dozen events, response parsing) and the GIL lets one core do it. For a dataset of 10,000
small images that was the upload's limit, while s5cmd (Go) spends about 1 ms per file. This path
spends about 0.6 ms: build the request, sign it (`botocore.auth.S3SigV4Auth`), send it
(the client's `URLLib3Session`: its TLS settings, proxies and connection pool).

How it stays the request botocore would send:
- The first file goes through `put_object` as usual. Its request, seen at `before-send`, gives the
  URL botocore resolved for this bucket (endpoint rules, addressing style, a region redirect) and the
  signing region. The other files go to that URL prefix + the key, quoted as botocore quotes it.
- Integrity: `x-amz-checksum-crc32` in a header, as botocore's default checksum does. On HTTPS the
  payload is then unsigned and on HTTP it is SHA-256-signed: botocore's own rule (S3SigV4Auth).
- Each request is offered to the client's `before-send` handlers first, as botocore does, so a
  stubbed or mocked client (moto) answers it the same way.
- Anything this path does not reproduce leaves every file on `put_object`: a header it does not
  know (a user's hook adding SSE), a query string, another signature scheme, no credentials, or
  botocore internals that moved (`_request_signer`, `_endpoint`: present since 2015, checked by
  a test against the pinned botocore).
- A file whose direct PUT fails (any status but 200, any connection error) goes again through
  `put_object`, with botocore's retries and errors. After MAX_FAILURES such files the rest go that
  way too.
"""

from __future__ import annotations

import base64
import re
import threading
import zlib
from typing import Any
from urllib.parse import quote, urlsplit

#: After this many direct PUTs that failed, every other file goes through put_object.
MAX_FAILURES = 3
#: Headers botocore 1.44 puts on a PutObject with Body and ContentType (lower case); any other header
#: on the first request means a hook or setting this path would not reproduce.
KNOWN_HEADERS = frozenset({
    "content-type", "content-length", "content-md5", "user-agent", "expect", "transfer-encoding",
    "content-encoding", "x-amz-trailer", "x-amz-decoded-content-length", "x-amz-sdk-checksum-algorithm",
    "x-amz-checksum-crc32", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization",
    "amz-sdk-invocation-id", "amz-sdk-request",
})
_SIGV4_SCOPE = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/,]+/\d{8}/([a-z0-9-]+)/s3/aws4_request,")
_CHECKSUM_CONTEXT = {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}}


def object_url(prefix: str, key: str) -> str:
    """The URL of `key` under a bucket URL prefix: botocore quotes the `{Key+}` label this way."""
    return prefix + quote(key, safe="/~")


def crc32_header(body: bytes) -> str:
    """x-amz-checksum-crc32: the base64 of the big-endian CRC32, as S3 and botocore compute it."""
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


class DirectPut:
    """PUTs onto the route botocore took for one object of the same bucket (see the module's doc)."""

    def __init__(self, s3: Any, prefix: str, region: str, user_agent: str) -> None:
        self._s3 = s3
        self._prefix = prefix
        self._region = region
        self._user_agent = user_agent
        self._credentials = s3._request_signer._credentials
        self._http = s3._endpoint.http_session
        self._lock = threading.Lock()
        self.failures = 0

    @property
    def usable(self) -> bool:
        return self.failures < MAX_FAILURES

    @classmethod
    def learn(cls, s3: Any, key: str, send: Any) -> DirectPut | None:
        """Run `send()` (a put_object of `key`) and learn its route; None if this path cannot follow it."""
        seen: list[tuple[str, dict[str, str]]] = []

        def record(request: Any, **_: Any) -> None:
            seen.append((request.url, {k.lower(): _text(v) for k, v in request.headers.items()}))

        handler_id = f"yolopipe-direct-put-{id(seen)}"
        s3.meta.events.register_first("before-send.s3.PutObject", record, unique_id=handler_id)
        try:
            send()
        finally:
            s3.meta.events.unregister("before-send.s3.PutObject", unique_id=handler_id)
        if not seen:
            return None
        url, headers = seen[-1]  # the last attempt is the one that succeeded (after a region redirect)
        scope = _SIGV4_SCOPE.match(headers.get("authorization", ""))
        quoted = quote(key, safe="/~")
        if (scope is None or set(headers) - KNOWN_HEADERS or urlsplit(url).query or not url.endswith(quoted)
                or getattr(getattr(s3, "_request_signer", None), "_credentials", None) is None
                or getattr(getattr(s3, "_endpoint", None), "http_session", None) is None):
            return None
        return cls(s3, url[: -len(quoted)], scope.group(1), headers.get("user-agent", ""))

    def put(self, key: str, body: bytes, content_type: str) -> bool:
        """PUT one object; False (never an exception) when it did not land: the caller sends it again
        through put_object."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        request = AWSRequest(method="PUT", url=object_url(self._prefix, key), data=body, headers={
            "Content-Type": content_type, "User-Agent": self._user_agent, "x-amz-sdk-checksum-algorithm": "CRC32",
            "x-amz-checksum-crc32": crc32_header(body)})
        request.context.update(client_config=self._s3.meta.config, has_streaming_input=True,
                               checksum=_CHECKSUM_CONTEXT)
        try:
            S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
            prepared = request.prepare()
            _, response = self._s3.meta.events.emit_until_response("before-send.s3.PutObject", request=prepared)
            if response is None:
                response = self._http.send(prepared)
            if response.status_code == 200:
                return True
        except (BotoCoreError, OSError):
            pass
        with self._lock:
            self.failures += 1
        return False


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
