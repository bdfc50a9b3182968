"""Where the CLI's AWS calls come from and how their failures are told to the user.

`Settings` says which account, region and endpoint (AWS, or the local emulator on 127.0.0.1)
and which stack; `Aws` builds the boto3 clients once from them; `aws_errors()` is the one place
that turns botocore's exceptions into the domain errors whose one-line message says what to do.
Every command module takes an `Aws` and never builds a client itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from yolopipe_shared.errors import ExecutionNotFound, ParameterError, PipelineNotFound, YolopipeError

#: Environment variables the CLI reads (besides boto3's own AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
ENV_STACK = "YOLOPIPE_STACK"
ENV_BUCKET = "YOLOPIPE_BUCKET"
ENV_PIPELINE = "YOLOPIPE_PIPELINE"
ENV_LOCAL_ENDPOINT = "YOLOPIPE_LOCAL_ENDPOINT"
ENV_CONNECT_TIMEOUT = "YOLOPIPE_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "YOLOPIPE_READ_TIMEOUT"

DEFAULT_STACK = "yolopipe"
DEFAULT_PIPELINE = "yolopipe"
#: Where `--local` points when the local mode has not said otherwise (moto's server default port).
DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:5000"
LOCAL_CREDENTIALS = ("local", "local")
#: Seconds to open a connection, and to wait for each read of an answer (botocore's defaults are 60 s
#: both, with up to 3 retries in standard mode: an endpoint that accepts and never answers kept the
#: CLI silent for minutes). A read waits only after a request's body was sent, so an 8 MiB upload part
#: is not bound by it; S3 keeps a long CompleteMultipartUpload alive with whitespace.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0
#: Attempts per call, first one included (botocore's standard retry mode: throttling, 5xx, timeouts).
MAX_ATTEMPTS = 3
ENDPOINT_SCHEMES = ("http", "https")
#: Set on a timeout exception by the client that raised it: how long it waited, for the message.
TIMEOUT_ATTRIBUTE = "yolopipe_timeout_s"

_NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "404",
                    "NotFound", "NoSuchEntity", "ValidationError", "ValidationException"}
_ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"}
_CREDENTIAL_CODES = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
                     "UnrecognizedClientException", "InvalidAccessKeyId", "RequestExpired"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown"}


class AwsUnavailable(YolopipeError):
    """AWS (or the local emulator) cannot be used: no credentials, no region, unreachable, denied."""


class AccessDenied(AwsUnavailable):
    """The credentials work but lack a permission the command needs."""


class NotFound(YolopipeError):
    """Something the command needs (bucket, stack, object, model package) does not exist."""


@dataclass(frozen=True)
class Settings:
    """Which AWS (or emulator) and which yolopipe stack a command talks to."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    stack: str = DEFAULT_STACK
    bucket: str | None = None
    pipeline: str | None = None
    #: Talking to the local emulator: it takes any credentials, so none need configuring.
    local: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout: float = DEFAULT_READ_TIMEOUT_S

    def __post_init__(self) -> None:
        """Refuse what botocore would raise a traceback for, before any client is built."""
        check_endpoint_url(self.endpoint_url)
        check_region(self.region)
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not 0 < value <= 3600:
                raise ParameterError(f"{name.replace('_', ' ')} must be between 0 and 3600 seconds, got {value}")

    @classmethod
    def from_env(
        cls,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        local: bool = False,
        stack: str | None = None,
        bucket: str | None = None,
        pipeline: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Options first, then YOLOPIPE_* variables; boto3 reads AWS_PROFILE/AWS_REGION/AWS_ENDPOINT_URL."""
        env = os.environ if environ is None else environ
        if local and not endpoint_url:
            endpoint_url = local_endpoint(env)
        return cls(
            profile=profile or None,
            region=region or None,
            endpoint_url=endpoint_url or env.get("AWS_ENDPOINT_URL") or None,
            stack=stack or env.get(ENV_STACK) or DEFAULT_STACK,
            bucket=bucket or env.get(ENV_BUCKET) or None,
            pipeline=pipeline or env.get(ENV_PIPELINE) or None,
            local=local,
            connect_timeout=_seconds(env, ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT_S),
            read_timeout=_seconds(env, ENV_READ_TIMEOUT, DEFAULT_READ_TIMEOUT_S),
        )

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def check_endpoint_url(url: str | None) -> None:
    """An http(s) URL with a host (botocore's own test), or ParameterError: `--endpoint-url not a url`
    would otherwise surface as botocore's ValueError traceback when the first client is built."""
    from urllib.parse import urlsplit

    from botocore.utils import is_valid_uri

    if url is None:
        return
    if urlsplit(url).scheme.lower() not in ENDPOINT_SCHEMES or not is_valid_uri(url):
        raise ParameterError(f"--endpoint-url {url[:200]!r} is not an http(s) URL with a host, "
                             "e.g. http://127.0.0.1:5000 or https://s3.eu-west-1.amazonaws.com")


def check_region(region: str | None, source: str = "--region") -> None:
    """A region botocore accepts (a DNS label: letters, digits, '-'), or ParameterError naming `source`."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    if region is None:
        return
    try:
        validate_region_name(region)
    except InvalidRegionError as error:
        raise ParameterError(f"{source} {region[:100]!r} is not an AWS region name, e.g. us-east-1 "
                             "(letters, digits and '-')") from error


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(f"{name}={raw[:50]!r} is not a number of seconds") from None


def local_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """The local emulator's endpoint: YOLOPIPE_LOCAL_ENDPOINT, else where `yolopipe local serve` listens."""
    env = os.environ if environ is None else environ
    return env.get(ENV_LOCAL_ENDPOINT) or DEFAULT_LOCAL_ENDPOINT


@dataclass
class Aws:
    """boto3 clients for one `Settings`, built on first use and reused (they are thread-safe)."""

    settings: Settings = field(default_factory=Settings)
    session: Any = None
    _clients: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)
    _stack_outputs: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.session is None:
            import boto3

            with aws_errors():
                if self.settings.local and not self.settings.profile:
                    self.session = boto3.session.Session(
                        aws_access_key_id=LOCAL_CREDENTIALS[0], aws_secret_access_key=LOCAL_CREDENTIALS[1],
                        region_name=self.settings.region or os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                    )
                else:
                    self.session = boto3.session.Session(
                        profile_name=self.settings.profile, region_name=self.settings.region
                    )

    @property
    def region(self) -> str | None:
        return self.session.region_name  # type: ignore[no-any-return]

    def client(self, service: str, *, max_pool_connections: int = 10) -> Any:
        key = (service, max_pool_connections)
        if key not in self._clients:
            from botocore.config import Config

            with aws_errors():
                if not self.region:
                    raise AwsUnavailable(
                        "no AWS region: pass --region us-east-1, set AWS_REGION, or run `aws configure`"
                    )
                # The region may come from AWS_DEFAULT_REGION or the profile, which Settings never saw.
                check_region(self.region, "region (AWS_REGION / AWS_DEFAULT_REGION / the profile's)")
                config = Config(
                    max_pool_connections=max_pool_connections,
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                    user_agent_extra="yolopipe-cli",
                )
                client = self.session.client(service, endpoint_url=self.settings.endpoint_url, config=config)
                # A timeout says how long it waited: aws_errors() reads it from the exception.
                client.meta.events.register("after-call-error", self._note_timeout)
                self._clients[key] = client
        return self._clients[key]

    def _note_timeout(self, exception: BaseException | None = None, **_: Any) -> None:
        from botocore import exceptions as bx

        if isinstance(exception, bx.ConnectTimeoutError):
            setattr(exception, TIMEOUT_ATTRIBUTE, self.settings.connect_timeout)  # noqa: B010 (not a botocore field)
        elif isinstance(exception, bx.ReadTimeoutError | bx.ConnectionClosedError):
            setattr(exception, TIMEOUT_ATTRIBUTE, self.settings.read_timeout)  # noqa: B010

    # -- the stack: where the bucket and pipeline names come from when not given -------------

    def stack_outputs(self) -> dict[str, str]:
        """The CloudFormation stack's outputs (empty if the stack does not exist)."""
        if self._stack_outputs is None:
            from botocore.exceptions import ClientError

            outputs: dict[str, str] = {}
            with aws_errors():
                try:
                    stacks = self.client("cloudformation").describe_stacks(StackName=self.settings.stack)["Stacks"]
                except ClientError as error:
                    if _code(error) != "ValidationError":  # CloudFormation's "stack does not exist"
                        raise
                    stacks = []
            for stack in stacks[:1]:
                for output in stack.get("Outputs") or []:
                    outputs[output["OutputKey"]] = output["OutputValue"]
            self._stack_outputs = outputs
        return self._stack_outputs

    def bucket(self) -> str:
        """The dataset bucket: --bucket / YOLOPIPE_BUCKET, else the stack's bucket output."""
        if self.settings.bucket:
            return self.settings.bucket
        outputs = self.stack_outputs()
        for key in ("DatasetBucketName", "BucketName", "DatasetBucket"):
            if outputs.get(key):
                return outputs[key]
        for key, value in outputs.items():
            if key.endswith("BucketName"):
                return value
        raise NotFound(
            f"no dataset bucket: stack {self.settings.stack!r} not found or has no bucket output; "
            f"pass --bucket NAME, set {ENV_BUCKET}, or --stack NAME (deploy with `sam deploy --guided`)"
        )

    def pipeline_name(self) -> str:
        """The pipeline: --pipeline / YOLOPIPE_PIPELINE, else the stack's PipelineName output, else 'yolopipe'."""
        if self.settings.pipeline:
            return self.settings.pipeline
        return self.stack_outputs().get("PipelineName") or DEFAULT_PIPELINE


def _endpoint_of(error: Any) -> str:
    """scheme://host[:port] of the request that failed (never its path or query)."""
    from urllib.parse import urlsplit

    url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "AWS"


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(what: str | None = None) -> Iterator[None]:
    """Translate botocore failures into one-line domain errors (`raise ... from`).

    `what` names the thing looked up ("pipeline 'x'", "execution ...") so a not-found reads well.
    Errors that are not expected (a bug, an unknown API error) pass through unchanged.
    """
    from botocore import exceptions as bx

    try:
        yield
    except bx.NoCredentialsError as error:
        raise AwsUnavailable(
            "no AWS credentials: run `aws configure` (or `aws sso login`), set AWS_PROFILE, "
            "or use --local for the local emulator"
        ) from error
    except (bx.PartialCredentialsError, bx.CredentialRetrievalError, bx.TokenRetrievalError) as error:
        raise AwsUnavailable(f"AWS credentials are incomplete or expired ({error}): log in again") from error
    except bx.ProfileNotFound as error:
        raise AwsUnavailable(f"{error}: check --profile / AWS_PROFILE against `aws configure list-profiles`") from error
    except bx.NoRegionError as error:
        raise AwsUnavailable(
            "no AWS region: pass --region us-east-1, set AWS_REGION, or run `aws configure`"
        ) from error
    except (bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError) as error:
        # Before EndpointConnectionError: ConnectTimeoutError is one.
        endpoint = _endpoint_of(error)
        waited = getattr(error, TIMEOUT_ATTRIBUTE, None)
        within = f"within {waited:g} s " if waited else ""
        attempts = f" ({MAX_ATTEMPTS} attempts)" if waited else ""
        verb = "closed the connection without answering" if isinstance(error, bx.ConnectionClosedError) else \
            f"did not answer {within}"
        raise AwsUnavailable(f"AWS {verb.rstrip()} at {endpoint}{attempts}; check the network / --endpoint-url"
                             f" ({ENV_CONNECT_TIMEOUT} / {ENV_READ_TIMEOUT} set the waits)") from error
    except bx.EndpointConnectionError as error:
        endpoint = str(getattr(error, "kwargs", {}).get("endpoint_url") or "AWS")
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        local = " (is `yolopipe local serve` running?)" if host in ("127.0.0.1", "localhost") else ""
        raise AwsUnavailable(f"cannot reach {endpoint}{local}; check the network, --region and --endpoint-url"
                             ) from error
    except bx.ParamValidationError as error:
        raise YolopipeError(f"invalid request: {str(error).splitlines()[-1]}") from error
    except bx.ClientError as error:
        code = _code(error)
        message = error.response.get("Error", {}).get("Message", "") or code
        operation = getattr(error, "operation_name", "the call")
        if code in _CREDENTIAL_CODES:
            raise AwsUnavailable(f"AWS refused the credentials ({code}): log in again or check AWS_PROFILE") from error
        if code in _ACCESS_CODES:
            raise AccessDenied(
                f"access denied for {operation}: your role needs that permission ({message})"
            ) from error
        if code in _THROTTLE_CODES:
            raise AwsUnavailable(f"AWS is throttling {operation}: wait a minute and retry") from error
        if code in _NOT_FOUND_CODES and what is not None:
            if what.startswith("pipeline "):
                raise PipelineNotFound(
                    f"{what} not found in this account/region: "
                    "check --pipeline / --region, or list them with `yolopipe pipelines list`"
                ) from error
            if what.startswith("execution "):
                raise ExecutionNotFound(
                    f"{what} not found: list them with `yolopipe executions list`"
                ) from error
            raise NotFound(f"{what} not found ({message})") from error
        raise
