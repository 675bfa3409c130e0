"""Read stack outputs from a Pulumi backend without the Pulumi CLI.

Two backends are supported, chosen by the environment's `backend_url`:

- `s3://bucket[/prefix]`, Pulumi's DIY S3 backend. The checkpoint layout is Pulumi's own
  (pkg/backend/diy): `.pulumi/stacks/<project>/<stack>.json` for the project-scoped layout
  (meta.yaml version 1) and `.pulumi/stacks/<stack>.json` for the legacy one.
- `https://<api host>`, the Pulumi Cloud REST API: `GET /api/stacks/<org>/<project>/<stack>/export`
  with `Authorization: token <token>` returns `{"version": 3, "deployment": {...}}`. The
  token comes from a Secrets Manager secret; it is never logged, returned or put in an error.

Stack outputs are the `outputs` of the root `pulumi:pulumi:Stack` resource. Secret outputs stay
encrypted: they are reported as "[secret]" and never decrypted or logged.
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

from .aws import client, error_code
from .settings import LOOPBACK_HOSTS, is_pulumi_cloud_url

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# API version header that the Pulumi Cloud REST API documentation requires.
PULUMI_API_ACCEPT = "application/vnd.pulumi+8"
CLOUD_TIMEOUT_SECONDS = 10
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_DEFAULT_OPENER = urllib.request.build_opener()


class PulumiCloudError(RuntimeError):
    """The Pulumi Cloud API or the access token's secret could not be read.

    The message names the stack, the URL and the secret, never the token.
    """


@dataclass(frozen=True)
class Backend:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Backend:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(
                f"unsupported Pulumi backend URL {url!r}: expected s3://bucket[/prefix]"
            )
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, ".pulumi", *parts) if part)


@dataclass
class StackState:
    """A stack's outputs and state size, as its checkpoint records them."""

    exists: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    resource_count: int = 0
    pending_operations: int = 0


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            return "[secret]"
        return {key: _mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    return value


def _get(bucket: str, key: str, region: str | None) -> bytes | None:
    s3 = client("s3", region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:
        if error_code(error) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
    return gzip.decompress(body) if key.endswith(".gz") else body


def parse_checkpoint(document: dict[str, Any]) -> StackState:
    """Extract the outputs and health of a checkpoint document (format version 3 or 4)."""
    return parse_deployment((document.get("checkpoint") or {}).get("latest") or {})


def parse_deployment(latest: dict[str, Any]) -> StackState:
    """Extract the outputs and health of a deployment (a checkpoint's `latest`, or the
    `deployment` of a stack export)."""
    resources = latest.get("resources") or []
    outputs: dict[str, Any] = {}
    for resource in resources:
        if resource.get("type") == ROOT_STACK_TYPE:
            outputs = _mask_secrets(resource.get("outputs") or {})
            break
    return StackState(
        exists=True,
        outputs=outputs,
        resource_count=len(resources),
        pending_operations=len(latest.get("pending_operations") or []),
    )


def read_stack_state(
    backend_url: str,
    project: str,
    stack: str,
    region: str,
    *,
    organization: str | None = None,
    token_secret: str | None = None,
) -> StackState:
    """Read the stack's state; `exists` is False when the stack has no state yet.

    A Pulumi Cloud `backend_url` needs `organization` and `token_secret` (the environment's
    `pulumi_org` and `pulumi_token_secret`); an s3:// one ignores them.
    """
    if is_pulumi_cloud_url(backend_url) or urlparse(backend_url).scheme in ("http", "https"):
        if not organization or not token_secret:
            raise ValueError(
                f"backend_url {backend_url!r} is Pulumi Cloud, which needs the environment's "
                "pulumi_org and pulumi_token_secret settings"
            )
        return read_cloud_stack_state(
            backend_url, organization, project, stack, token_secret, region
        )
    backend = Backend.parse(backend_url)
    candidates = [
        backend.key("stacks", project, f"{stack}.json"),
        backend.key("stacks", project, f"{stack}.json.gz"),
        backend.key("stacks", f"{stack}.json"),
    ]
    for key in candidates:
        body = _get(backend.bucket, key, region)
        if body is not None:
            return parse_checkpoint(json.loads(body))
    return StackState(exists=False)


def cloud_export_url(api_url: str, organization: str, project: str, stack: str) -> str:
    """Return the URL of the stack export endpoint.

    Raises ValueError for a URL other than https:// (or http:// on loopback).
    """
    if not is_pulumi_cloud_url(api_url):
        raise ValueError(
            f"unsupported Pulumi Cloud API URL {api_url!r}: expected https://<host>, such as "
            "https://api.pulumi.com (plain http:// only on 127.0.0.1 or localhost)"
        )
    path = "/".join(quote(part, safe="") for part in (organization, project, stack))
    return f"{api_url.rstrip('/')}/api/stacks/{path}/export"


def read_cloud_stack_state(
    api_url: str,
    organization: str,
    project: str,
    stack: str,
    token_secret: str,
    region: str,
) -> StackState:
    """Read the stack from the Pulumi Cloud export endpoint; a 404 means no state yet."""
    url = cloud_export_url(api_url, organization, project, stack)
    token = _read_token(token_secret, region)
    request = urllib.request.Request(
        url,
        headers={
            "Authorization": f"token {token}",
            "Accept": PULUMI_API_ACCEPT,
            "Content-Type": "application/json",
            "User-Agent": "control-plane",
        },
    )
    # A loopback URL (tests, the sandbox) must not go through a proxy from the environment.
    opener = _NO_PROXY if urlparse(url).hostname in LOOPBACK_HOSTS else _DEFAULT_OPENER
    stack_name = f"{organization}/{project}/{stack}"
    try:
        with opener.open(request, timeout=CLOUD_TIMEOUT_SECONDS) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return StackState(exists=False)
        detail = _api_message(error).replace(token, "[token]")
        hint = ""
        if error.code in (401, 403):
            hint = (
                f" Check the access token in Secrets Manager secret {token_secret!r} and its "
                f"access to organization {organization!r}."
            )
        raise PulumiCloudError(
            f"Pulumi Cloud returned HTTP {error.code} for stack {stack_name} ({url}): "
            f"{detail}.{hint}"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise PulumiCloudError(
            f"Pulumi Cloud could not be reached for stack {stack_name} ({url}): {error}"
        ) from None
    try:
        document = json.loads(body)
    except ValueError as error:
        raise PulumiCloudError(
            f"Pulumi Cloud returned invalid JSON for stack {stack_name} ({url}): {error}"
        ) from None
    return parse_deployment(document.get("deployment") or {})


def _read_token(secret_name: str, region: str) -> str:
    """Read the Pulumi access token from Secrets Manager (the secret string, trimmed).

    NOTE: botocore's DEBUG log prints response bodies, this one included, so botocore must
    not log at DEBUG in production.
    """
    try:
        response = client("secretsmanager", region).get_secret_value(SecretId=secret_name)
    except Exception as error:
        code = error_code(error) or type(error).__name__
        raise PulumiCloudError(
            f"the Pulumi access token could not be read from Secrets Manager secret "
            f"{secret_name!r}: {code}"
        ) from None
    token = (response.get("SecretString") or "").strip()
    if not token:
        raise PulumiCloudError(
            f"Secrets Manager secret {secret_name!r} has no SecretString; store the Pulumi "
            "access token in it as plain text"
        )
    return token


def _api_message(error: urllib.error.HTTPError) -> str:
    """Return the `message` of a Pulumi Cloud error body, else the HTTP reason."""
    try:
        document = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        document = {}
    message = document.get("message") if isinstance(document, dict) else None
    return str(message or error.reason)
