"""Small-file PUTs without botocore's per-call machinery: SigV4-signed as botocore's S3 signer signs
them, sent on kept connections with the client's TLS settings.

Why: `put_object` costs about 2 ms of Python per file (parameter validation, serialisation, endpoint
rules, a dozen events, response parsing) and the GIL lets one core do it. For a dataset of 10,000
small images that was the upload's limit, while s5cmd (Go) spends about 1 ms per file. This path
builds the request, signs it (`sign_put`: a test compares it with `botocore.auth.S3SigV4Auth` on
the same request) and sends it on one `http.client` connection per thread, kept open between
files (about 0.8 ms per file in all; botocore's urllib3 session alone cost about 1 ms). The
connections take the client's TLS settings (its `verify`: CA bundle, or none); when the client goes
through a proxy or presents a client certificate, requests go on the client's own
`URLLib3Session` instead.

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
import functools
import hashlib
import hmac
import http.client
import os
import re
import ssl
import threading
import time
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


def quoted_key(key: str) -> str:
    """`key` as it ends a URL: botocore quotes the `{Key+}` label this way."""
    return quote(key, safe="/~")


def crc32_header(body: bytes) -> str:
    """x-amz-checksum-crc32: the base64 of the big-endian CRC32, as S3 and botocore compute it."""
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


class DirectPut:
    """PUTs onto the route botocore took for one object of the same bucket (see the module's doc)."""

    def __init__(self, s3: Any, prefix: str, region: str, user_agent: str) -> None:
        self._s3 = s3
        self._prefix = prefix
        self._path_prefix = urlsplit(prefix).path  # what follows scheme://host[:port]: the request target
        self._region = region
        self._user_agent = user_agent
        self._credentials = s3._request_signer._credentials
        self._http = s3._endpoint.http_session
        self._wire = _Connections.for_session(prefix, self._http, s3.meta.config)
        explicit = (getattr(s3.meta.config, "s3", None) or {}).get("payload_signing_enabled")
        self._sign_payload = bool(explicit) if explicit is not None else not prefix.startswith("https")
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
        quoted = quoted_key(key)
        if (scope is None or set(headers) - KNOWN_HEADERS or urlsplit(url).query or not url.endswith(quoted)
                or getattr(getattr(s3, "_request_signer", None), "_credentials", None) is None
                or getattr(getattr(s3, "_endpoint", None), "http_session", None) is None):
            return None
        return cls(s3, url[: -len(quoted)], scope.group(1), headers.get("user-agent", ""))

    def put(self, key: str, body: bytes, content_type: str) -> bool:
        """PUT one object; False (never an exception) when it did not land: the caller sends it again
        through put_object."""
        from botocore.awsrequest import AWSPreparedRequest, HeadersDict
        from botocore.exceptions import BotoCoreError

        quoted = quoted_key(key)
        url = self._prefix + quoted
        headers = {"Content-Type": content_type, "x-amz-sdk-checksum-algorithm": "CRC32",
                   "x-amz-checksum-crc32": crc32_header(body)}
        try:
            sign_put(url, body, headers, self._credentials.get_frozen_credentials(), self._region,
                     sign_payload=self._sign_payload, amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
            headers["User-Agent"] = self._user_agent  # never signed (botocore does not sign it either)
            headers["Content-Length"] = str(len(body))
            prepared = AWSPreparedRequest("PUT", url, HeadersDict(headers), body, False)  # type: ignore[arg-type]
            _, response = self._s3.meta.events.emit_until_response("before-send.s3.PutObject", request=prepared)
            if response is not None:
                status = response.status_code
            elif self._wire is not None:
                status = self._wire.put(self._path_prefix + quoted, body, headers)
            else:
                status = self._http.send(prepared).status_code
            if status == 200:
                return True
        except (BotoCoreError, OSError, http.client.HTTPException):
            pass
        with self._lock:
            self.failures += 1
        return False


def sign_put(url: str, body: bytes, headers: dict[str, str], credentials: Any, region: str, *, sign_payload: bool,
             amz_date: str) -> None:
    """Sign a PUT to S3 with SigV4, in place: adds Host, X-Amz-Date, X-Amz-Content-SHA256, the session
    token if any, and Authorization over every header given. The same signature botocore's
    S3SigV4Auth computes for the same request (tests/unit/cli/test_upload_direct_put.py compares them):
    S3's path is used as quoted, never normalised; the payload is SHA-256-signed, or UNSIGNED-PAYLOAD
    where `sign_payload` is False (HTTPS with a checksum header, botocore's rule)."""
    split = urlsplit(url)
    host = split.netloc.lower()
    if (split.scheme, split.port) in (("http", 80), ("https", 443)):
        host = split.hostname or host
    headers["Host"] = host
    headers["X-Amz-Date"] = amz_date
    headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest() if sign_payload else "UNSIGNED-PAYLOAD"
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    canonical_headers = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    names = sorted(canonical_headers)
    canonical = "\n".join(["PUT", split.path, split.query, *(f"{n}:{canonical_headers[n]}" for n in names), "",
                           ";".join(names), headers["X-Amz-Content-SHA256"]])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(_signing_key(credentials.secret_key, amz_date[:8], region), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")


@functools.lru_cache(maxsize=8)
def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class _Connections:
    """One http.client connection per thread to the bucket's host, reused from file to file."""

    def __init__(self, scheme: str, host: str, port: int | None, timeout: tuple[float, float],
                 context: ssl.SSLContext | None) -> None:
        self._scheme, self._host, self._port = scheme, host, port
        self._connect_timeout, self._read_timeout = timeout
        self._context = context
        self._local = threading.local()

    @classmethod
    def for_session(cls, prefix: str, session: Any, config: Any) -> _Connections | None:
        """Connections with the session's TLS settings; None where they would not be the session's own
        (a proxy, a client certificate, an unknown scheme, botocore internals that moved)."""
        from botocore.httpsession import get_cert_path

        url = urlsplit(prefix)
        try:
            if session._proxy_config.proxy_url_for(prefix) or session._cert_file or url.hostname is None:
                return None
            verify = session._verify
        except AttributeError:
            return None
        timeout = (float(config.connect_timeout), float(config.read_timeout))
        if url.scheme == "http":
            return cls("http", url.hostname, url.port, timeout, None)
        if url.scheme != "https":
            return None
        if verify is False:
            context = ssl._create_unverified_context()  # noqa: S323 (the client asked for verify=False)
        else:
            path = get_cert_path(verify)
            context = ssl.create_default_context(capath=path) if path and os.path.isdir(path) else \
                ssl.create_default_context(cafile=path)
        return cls("https", url.hostname, url.port, timeout, context)

    def put(self, target: str, body: bytes, headers: dict[str, str]) -> int:
        """Send one PUT of `target` (the URL's path); its status. A kept connection the server has closed
        meanwhile is opened again once."""
        kept = getattr(self._local, "connection", None) is not None
        try:
            return self._send(target, body, headers)
        except (OSError, http.client.HTTPException):
            if not kept:
                raise
        return self._send(target, body, headers)  # PUT is idempotent: once more, on a new connection

    def _send(self, target: str, body: bytes, headers: dict[str, str]) -> int:
        connection = self._connection()
        try:
            connection.request("PUT", target, body=body, headers=headers)
            connection.sock.settimeout(self._read_timeout)
            response = connection.getresponse()
            response.read()
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        return int(response.status)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._scheme == "https":
                connection = http.client.HTTPSConnection(self._host, self._port, timeout=self._connect_timeout,
                                                         context=self._context)
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
