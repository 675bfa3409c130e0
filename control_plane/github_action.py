"""Steps of the composite GitHub Action (action.yml) that run around `control-plane deploy`.

`python -m control_plane.github_action COMMAND`:

- check-subject: before any AWS call, compare the `sub` claim of this job's OIDC token with the
  subjects the deploy role trusts, and fail with both when the role would deny AssumeRole.
- request-id: derive the deployment's request id from the run id and attempt, so a re-run job
  attaches to the execution an earlier attempt started instead of deploying twice.
- annotate: turn a failed deployment's error name and cause into a GitHub error annotation.

Only the GitHub Actions runner sets the environment variables these commands read.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from lambdas.common.github_settings import STS_AUDIENCE, encode_subject_value
from lambdas.common.settings import SettingsError, load_settings

from .executions import execution_arn, execution_name

STACK_NAME = "EbControlPlane"
ACTION_ROOT = Path(__file__).resolve().parent.parent
TOKEN_REQUEST_TIMEOUT_SECONDS = 10
# Statuses of an earlier attempt's execution that a re-run reports instead of deploying again.
ATTACHABLE_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE", "SUCCEEDED"})
# The summary line `control-plane deploy` prints for a failed execution, and click's usage
# errors (such as a rejected bundle).
SUMMARY_ERROR_LINE = re.compile(r"^error\s{2,}(?P<name>[A-Za-z0-9_.]+): (?P<cause>.*)$")
CLICK_ERROR_LINE = re.compile(r"^Error: (?P<cause>.*)$")


class TokenUnavailable(RuntimeError):
    """The job's OIDC token could not be requested or read."""


@dataclass(frozen=True)
class JobContext:
    """The facts GitHub builds a job's `sub` claim from, read from the runner's variables."""

    repository: str
    ref: str
    event_name: str
    github_environment: str
    owner_id: str = ""
    repository_id: str = ""

    @classmethod
    def from_environment(cls, github_environment: str) -> JobContext:
        return cls(
            repository=os.environ.get("GITHUB_REPOSITORY", ""),
            ref=os.environ.get("GITHUB_REF", ""),
            event_name=os.environ.get("GITHUB_EVENT_NAME", ""),
            github_environment=github_environment,
            owner_id=os.environ.get("GITHUB_REPOSITORY_OWNER_ID", ""),
            repository_id=os.environ.get("GITHUB_REPOSITORY_ID", ""),
        )


def uses_immutable_format(subjects: list[str]) -> bool:
    """Return whether the subjects name the repository as OWNER@ID/REPO@ID."""
    return any("@" in subject_repository(subject) for subject in subjects)


def subject_repository(subject: str) -> str:
    """Return the OWNER/REPO part of a `repo:OWNER/REPO:...` subject."""
    return subject.split(":", 2)[1] if subject.count(":") >= 2 else ""


def subject_context(subject: str) -> str:
    """Return what follows the repository: `ref:refs/heads/main`, `environment:X`, ..."""
    return subject.split(":", 2)[2] if subject.count(":") >= 2 else ""


def job_subject(job: JobContext, *, immutable: bool) -> str:
    """Compute the `sub` claim GitHub gives this job, by its documented default format.

    A job with a GitHub environment gets `repo:OWNER/REPO:environment:NAME`; otherwise a
    pull_request event gets `repo:OWNER/REPO:pull_request` and any other event
    `repo:OWNER/REPO:ref:REF` (docs.github.com/en/actions/reference/security/oidc, "Example
    subject claims"). Repositories created after 2026-07-15, or opted in, use
    `OWNER@OWNER-ID/REPO@REPO-ID` (same page, "Immutable subject claims").
    """
    repository = job.repository
    if immutable and job.owner_id and job.repository_id and "/" in repository:
        owner, name = repository.split("/", 1)
        repository = f"{owner}@{job.owner_id}/{name}@{job.repository_id}"
    if job.github_environment:
        return f"repo:{repository}:environment:{encode_subject_value(job.github_environment)}"
    if job.event_name == "pull_request":
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:{job.ref}"


def read_token_subject(request_url: str, request_token: str) -> str:
    """Request this job's OIDC token for the STS audience and return its `sub` claim.

    The token itself is never printed or stored. Only its payload's `sub` is read, and the
    signature is not checked here because STS checks it when the role is assumed.
    """
    separator = "&" if "?" in request_url else "?"
    url = f"{request_url}{separator}audience={urllib.parse.quote(STS_AUDIENCE)}"
    request = urllib.request.Request(url, headers={"Authorization": f"bearer {request_token}"})
    try:
        with urllib.request.urlopen(request, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS) as response:
            token = json.loads(response.read())["value"]
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["sub"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        raise TokenUnavailable(f"{type(error).__name__}: {error}") from None


def mismatch_hints(subject: str, accepted: list[str]) -> list[str]:
    """Explain why the role does not accept `subject` and what to change."""
    hints = []
    repositories = {subject_repository(item) for item in accepted}
    if subject_repository(subject) not in repositories:
        trusted = ", ".join(sorted(repositories))
        hints.append(
            f"The role trusts the repository {trusted}, and this job's token names "
            f"{subject_repository(subject)}. If only the '@ID' parts differ, set or remove "
            "github.owner_id and github.repository_id so that the format matches the token."
        )
        return hints
    context = subject_context(subject)
    accepted_contexts = [subject_context(item) for item in accepted]
    environments = [item for item in accepted_contexts if item.startswith("environment:")]
    if context == "pull_request":
        hints.append(
            "Jobs triggered by pull_request events, including pull requests from forks, get "
            "this subject, and the role never trusts it. Deploy from a push or "
            "workflow_dispatch on an accepted branch, or from a job with an accepted GitHub "
            "environment."
        )
    elif context.startswith("environment:"):
        name = context.removeprefix("environment:")
        hints.append(
            f"This job declares the GitHub environment {name!r}, so its token names that "
            "environment instead of the branch. Add it to github.environments in "
            "environments.yaml and deploy the stack, or run the job without `environment:`."
        )
    elif context.startswith("ref:refs/heads/"):
        branch = context.removeprefix("ref:refs/heads/")
        if environments and len(environments) == len(accepted_contexts):
            hints.append(
                "The role trusts only jobs that declare a GitHub environment. Add "
                "`environment: NAME` to the job and pass the same name as the "
                "github-environment input."
            )
        else:
            hints.append(
                f"Branch {branch!r} is not trusted. Add it to github.branches in "
                "environments.yaml and deploy the stack, or deploy from a trusted branch."
            )
    elif context.startswith("ref:refs/tags/"):
        hints.append("The role trusts branches and GitHub environments, not tags.")
    return hints


def escape_annotation(text: str) -> str:
    """Escape a workflow command's message as GitHub's runner decodes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_annotation_property(text: str) -> str:
    return escape_annotation(text).replace(":", "%3A").replace(",", "%2C")


def annotation(title: str, message: str) -> str:
    """Return a `::error` workflow command line."""
    return f"::error title={escape_annotation_property(title)}::{escape_annotation(message)}"


def load_accepted_subjects(accepted_input: str, environments_file: Path) -> tuple[list[str], str]:
    """Return the subjects the role trusts and where they come from.

    The accepted-subjects input (one per line) wins; otherwise the github section of the
    environments file, the same one the stack builds the trust policy from.
    """
    listed = [line.strip() for line in accepted_input.splitlines() if line.strip()]
    if listed:
        return listed, "the accepted-subjects input"
    settings = load_settings(environments_file)
    if settings.github is None:
        raise SettingsError(
            f"{environments_file} has no github section, so the stack creates no deploy role; "
            "add the section (see README, GitHub Actions) or pass the accepted-subjects input"
        )
    return settings.github.subjects(), str(environments_file)


@click.group()
def main() -> None:
    """Steps of the control plane's composite GitHub Action."""


@main.command("check-subject")
@click.option(
    "--github-environment",
    default="",
    help="The GitHub environment the job declares with `environment:`; empty for none.",
)
@click.option(
    "--accepted-subjects",
    default="",
    help="Subjects the role trusts, one per line (default: the github section of the file).",
)
@click.option(
    "--environments-file",
    type=click.Path(path_type=Path),
    default=ACTION_ROOT / "environments.yaml",
    show_default=True,
    help="Environments file whose github section lists the trusted subjects.",
)
def check_subject(github_environment: str, accepted_subjects: str, environments_file: Path) -> None:
    """Print this job's OIDC subject and the trusted ones; exit 1 when the role would deny it."""
    job = JobContext.from_environment(github_environment.strip())
    try:
        accepted, source = load_accepted_subjects(accepted_subjects, environments_file)
    except SettingsError as error:
        _fail("No trusted subjects", str(error))
    if job.event_name == "pull_request_target":
        _fail(
            "pull_request_target is not supported",
            "pull_request_target jobs run with the base repository's permissions on behalf of "
            "a pull request that may come from a fork. Deploy from push or workflow_dispatch.",
        )
    computed = job_subject(job, immutable=uses_immutable_format(accepted))
    request_url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not request_url or not request_token:
        _fail(
            "No OIDC token",
            "This job cannot request an OIDC token: grant `permissions: id-token: write` to "
            f"the workflow or job. Its subject would be {computed}.",
        )
    try:
        subject = read_token_subject(request_url, request_token)
        from_token = True
    except TokenUnavailable as error:
        click.echo(
            f"warning: could not read the job's OIDC token ({error}); using the computed subject"
        )
        subject = computed
        from_token = False

    origin = (
        "from the job's OIDC token"
        if from_token
        else "computed from github.repository, github.ref and github-environment"
    )
    click.echo(f"OIDC subject of this job: {subject} ({origin})")
    if subject != computed:
        click.echo(
            f"note: github.repository, github.ref and github-environment give {computed}; the "
            "token's subject is the one AWS checks"
        )
    click.echo(f"Subjects the deploy role trusts ({source}):")
    for item in accepted:
        click.echo(f"  {item}")
    if subject in accepted:
        click.echo("The role trusts this subject.")
        return
    hints = mismatch_hints(subject, accepted)
    if not from_token and not job.github_environment:
        hints.append(
            "This subject was computed without a token. If the job declares `environment:`, "
            "pass the same name as the github-environment input."
        )
    message = "\n".join(
        [
            f"AssumeRoleWithWebIdentity would be denied: this job's subject is {subject}, and "
            f"the role trusts only: {', '.join(accepted)}.",
            *hints,
        ]
    )
    _fail("OIDC subject not trusted by the deploy role", message)


def _fail(title: str, message: str) -> NoReturn:
    click.echo(message, err=True)
    click.echo(annotation(title, message))
    sys.exit(1)


def choose_request_id(
    sfn: Any, state_machine_arn: str, environment: str, run_id: str, attempt: int
) -> tuple[str, str]:
    """Return the request id for this attempt of the run, and why it was chosen.

    Each attempt has its own id, `gh-<run id>-<attempt>`. A re-run first looks for the
    executions of the earlier attempts, newest first. It reuses the id of one still running or
    succeeded, so the job attaches to it or reports its outcome. After one that failed, timed
    out or was aborted, this attempt deploys again under its own id.
    """
    from botocore.exceptions import ClientError

    own = f"gh-{run_id}-{attempt}"
    for previous in range(attempt - 1, 0, -1):
        request_id = f"gh-{run_id}-{previous}"
        arn = execution_arn(state_machine_arn, execution_name(environment, request_id))
        try:
            status = sfn.describe_execution(executionArn=arn)["status"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                continue
            raise
        if status in ATTACHABLE_STATUSES:
            return request_id, f"attempt {previous} started execution {arn} ({status}); reusing it"
        return own, f"attempt {previous}'s execution {arn} ended {status}; deploying again"
    return own, "no earlier attempt started an execution"


def _state_machine_arn(cloudformation: Any, stack_name: str) -> str:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    return outputs["StateMachineArn"]


@main.command("request-id")
@click.option("--environment", "-e", required=True, help="Environment name from environments.yaml.")
@click.option("--run-id", required=True, help="github.run_id")
@click.option("--run-attempt", required=True, type=click.IntRange(min=1), help="github.run_attempt")
@click.option("--region", default=None, help="AWS region of the control plane stack.")
@click.option("--stack-name", default=STACK_NAME, show_default=True)
def request_id(
    environment: str, run_id: str, run_attempt: int, region: str | None, stack_name: str
) -> None:
    """Print the request id and write it to $GITHUB_OUTPUT as `request-id`."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if not run_id.isdigit():
        raise click.BadParameter(f"{run_id!r} is not a run id (digits only)", param_hint="--run-id")
    session = boto3.session.Session(region_name=region)
    config = Config(retries={"mode": "standard"})
    try:
        arn = _state_machine_arn(session.client("cloudformation", config=config), stack_name)
        chosen, reason = choose_request_id(
            session.client("stepfunctions", config=config), arn, environment, run_id, run_attempt
        )
    except (BotoCoreError, ClientError, KeyError) as error:
        _fail(
            "Control plane not found",
            f"reading stack {stack_name} or its executions failed: {error}",
        )
    click.echo(f"request id {chosen}: {reason}")
    output_file = os.environ.get("GITHUB_OUTPUT")
    if output_file:
        with open(output_file, "a", encoding="utf-8") as output:
            output.write(f"request-id={chosen}\n")


@main.command()
@click.option("--log", "log_file", required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--exit-code", required=True, type=int)
def annotate(log_file: Path, exit_code: int) -> None:
    """Print a GitHub error annotation for a failed `control-plane deploy`."""
    name, cause = None, None
    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        summary = SUMMARY_ERROR_LINE.match(line)
        usage = CLICK_ERROR_LINE.match(line)
        if summary:
            name, cause = summary["name"], summary["cause"]
        elif usage:
            name, cause = None, usage["cause"]
    if name:
        click.echo(annotation(f"Deployment failed: {name}", f"{cause} (exit status {exit_code})"))
    elif cause:
        click.echo(annotation("control-plane deploy failed", f"{cause} (exit status {exit_code})"))
    else:
        click.echo(
            annotation(
                "control-plane deploy failed",
                f"exit status {exit_code}; the job log above shows the output",
            )
        )


if __name__ == "__main__":
    main()
