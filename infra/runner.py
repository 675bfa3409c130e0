"""Deployment runner: the Pulumi steps of one control plane request, run by CodeBuild.

Contract (environment variables set by the build):
  PULUMI_ACTION              up | recover | check | check-only
  PULUMI_STACK               stack name, e.g. dev
  PULUMI_BACKEND_URL         s3://bucket (read by pulumi itself)
  PULUMI_CONFIG_PASSPHRASE   passphrase of the stack's secrets provider (read by pulumi)
  PULUMI_SECRETS             JSON object: Pulumi config key -> where its value is stored,
                             {"source": "ssm" | "secretsmanager" | "stack_config", "name",
                             "region", "jsonKey"}, or an SSM parameter name (optional)
  RESULT_URI                 s3://bucket/key that receives the result document
  CONTROL_PLANE_REQUEST_ID   request id, copied into the logs and the result (optional)
  PULUMI_LOCK_RETRIES        retries of a locked stack operation (optional, default 3)
  PULUMI_LOCK_RETRY_SECONDS  first retry delay, doubled each retry up to 60 s (default 10)
  PULUMI_CANCEL_STALE_LOCKS  true lets the runner run `pulumi cancel` when the retries end
                             and every lock is older than PULUMI_STALE_LOCK_SECONDS
                             (optional, default false: the runner never cancels a lock)
  PULUMI_STALE_LOCK_SECONDS  age in seconds from which a lock counts as stale (default 3600,
                             the CodeBuild project's build timeout)
  EB_WAIT_TIMEOUT_SECONDS    longest wait for an EB environment to leave Launching or
                             Updating, in seconds (default 900)
  EB_WAIT_POLL_SECONDS       seconds between two DescribeEnvironments calls (default 20)

The result document is written to RESULT_URI on every exit. The exit code is 0 on success
and 1 on failure; a `check-only` run that finds drift succeeds and lists it in `drift`.
`error.name` in the document names the failure, and `repairs` lists what the runner fixed on
the way (pending operations, stale locks, an `up` run again once EB was Ready).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

INFRA_DIR = Path(__file__).resolve().parent
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

from runner_lib.actions import Runner  # noqa: E402 (needs INFRA_DIR on sys.path)
from runner_lib.beanstalk import EnvironmentWaiter  # noqa: E402
from runner_lib.errors import PreviewFailed, RunnerError, UpFailed  # noqa: E402
from runner_lib.pulumi_cli import PulumiCli  # noqa: E402
from runner_lib.result import ResultDocument  # noqa: E402
from runner_lib.secrets import SecretReader  # noqa: E402
from runner_lib.settings import (  # noqa: E402
    PREVIEW_ACTIONS,
    load_settings,
    read_project_name,
    read_versions,
)

logger = logging.getLogger("runner")
# Standard retry mode: throttling and transient errors are retried with backoff and jitter, at
# most five attempts per call, as in the task Lambdas (lambdas/common/aws.py).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})


def default_client(service: str, region_name: str | None = None) -> Any:
    """Return a boto3 client in `region_name`, or in the build's region."""
    return boto3.client(service, region_name=region_name, config=CLIENT_CONFIG)


def main(
    environ: dict[str, str] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    client_factory: Callable[..., Any] = default_client,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run the action that PULUMI_ACTION names and return the process exit code.

    `sleep`, `client_factory` (boto3 client by service name, and `region_name` for a secret
    in another region) and `now` are replaced by tests.
    """
    environ = dict(os.environ) if environ is None else environ
    _configure_logging(environ.get("CONTROL_PLANE_REQUEST_ID", ""))
    started = time.monotonic()
    document = ResultDocument(
        action=environ.get("PULUMI_ACTION", ""),
        stack=environ.get("PULUMI_STACK", ""),
        project=read_project_name(INFRA_DIR),
        request_id=environ.get("CONTROL_PLANE_REQUEST_ID", ""),
    )

    cli: PulumiCli | None = None
    try:
        settings = load_settings(environ)
        cli = PulumiCli(
            INFRA_DIR,
            environ,
            lock_retries=settings.lock_retries,
            lock_retry_seconds=settings.lock_retry_seconds,
            sleep=sleep,
            cancel_stale_locks=settings.cancel_stale_locks,
            stale_lock_seconds=settings.stale_lock_seconds,
            now=now,
            repairs=document.repairs,
        )
        waiter = EnvironmentWaiter(
            lambda: client_factory("elasticbeanstalk"),
            timeout_seconds=settings.eb_wait_timeout_seconds,
            poll_seconds=settings.eb_wait_poll_seconds,
            sleep=sleep,
        )
        versions = read_versions(INFRA_DIR / "versions.env")
        secrets = SecretReader(client_factory)
        logger.info("starting %s of stack %s", settings.action, settings.stack)
        pulumi_version = versions["PULUMI_VERSION"]
        Runner(settings, cli, secrets, INFRA_DIR, pulumi_version, document, waiter).run()
    except RunnerError as error:
        document.error = error
    except Exception as error:
        logger.exception("unexpected runner failure")
        failure = PreviewFailed if document.action in PREVIEW_ACTIONS else UpFailed
        document.error = failure(f"unexpected runner failure: {error!r}")
    finally:
        document.commands = list(cli.commands) if cli else []
        document.duration_seconds = time.monotonic() - started

    if document.error is not None:
        logger.error("%s: %s", document.error.name, document.error)
    else:
        logger.info(
            "%s of stack %s succeeded (changes: %s)",
            document.action,
            document.stack,
            document.changes,
        )

    try:
        document.write(client_factory("s3"), environ.get("RESULT_URI", ""))
    except (RunnerError, ClientError, BotoCoreError) as error:
        logger.error(
            "could not write the result document to %r: %s", environ.get("RESULT_URI", ""), error
        )
        return 1
    logger.info("result document written to %s", environ["RESULT_URI"])
    return 0 if document.error is None else 1


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id or "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = self.request_id
        return True


def _configure_logging(request_id: str) -> None:
    """Send runner logs to stdout (the CodeBuild log), one line per decision, tagged with
    the request id."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter(request_id))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s runner request_id=%(request_id)s %(message)s")
    )
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
