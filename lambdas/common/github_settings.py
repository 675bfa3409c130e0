"""The `github` section of the environments file: which GitHub Actions jobs may deploy.

The CDK stack turns it into the trust policy of the role that GitHub Actions assumes through
OIDC, and the composite action (action.yml) compares the job's `sub` claim with the same list.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# The issuer host of GitHub Actions' OIDC tokens. IAM prefixes its condition keys with it.
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# The audience configure-aws-credentials requests by default.
STS_AUDIENCE = "sts.amazonaws.com"
# GitHub user and organization names: letters, digits and hyphens, at most 39 characters, not
# starting with a hyphen. Repository names: letters, digits, '.', '_' and '-', at most 100.
GITHUB_OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
GITHUB_REPOSITORY_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
OIDC_PROVIDER_ARN_PATTERN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::\d{12}:oidc-provider/" + re.escape(GITHUB_OIDC_HOST)
)
# Characters git check-ref-format rejects anywhere in a ref name.
BRANCH_FORBIDDEN_CHARACTERS = frozenset(" ~^:?*[\\")
MAX_ENVIRONMENT_NAME_LENGTH = 255


def _reject_wildcards(value: str, kind: str) -> None:
    if "*" in value or "?" in value:
        raise ValueError(
            f"{value!r} contains a wildcard ('*' or '?'); name one {kind} exactly, because the "
            "role trusts only the exact subjects listed"
        )


def _check_branch(value: str) -> str:
    _reject_wildcards(value, "branch")
    if value.startswith("refs/"):
        raise ValueError(
            f"{value!r} is a full ref; give the branch name without 'refs/heads/', e.g. 'main'"
        )
    invalid = (
        not value
        or value.startswith(("/", "-", "."))
        or value.endswith(("/", ".", ".lock"))
        or any(part in value for part in ("..", "//", "/.", "@{"))
        or value == "@"
        or any(char in BRANCH_FORBIDDEN_CHARACTERS for char in value)
        or any(ord(char) < 32 or ord(char) == 127 for char in value)
    )
    if invalid:
        raise ValueError(f"{value!r} is not a valid Git branch name (see git check-ref-format)")
    return value


def _check_environment_name(value: str) -> str:
    _reject_wildcards(value, "GitHub environment")
    if not value or value != value.strip() or len(value) > MAX_ENVIRONMENT_NAME_LENGTH:
        raise ValueError(
            f"{value!r} is not a GitHub environment name: 1 to {MAX_ENVIRONMENT_NAME_LENGTH} "
            "characters without leading or trailing spaces"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError(f"{value!r} contains a control character")
    return value


Branch = Annotated[str, AfterValidator(_check_branch)]
GitHubEnvironmentName = Annotated[str, AfterValidator(_check_environment_name)]


def encode_subject_value(value: str) -> str:
    """Encode a value as GitHub writes it into a `sub` claim: every ':' becomes '%3A'."""
    return value.replace(":", "%3A")


class GitHubSettings(BaseModel):
    """The GitHub repository whose Actions jobs may deploy, and the branches or GitHub
    environments they must run on."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(description="OWNER/REPO, spelled as GitHub shows it; no wildcards")
    owner_id: int | None = Field(
        default=None,
        ge=1,
        description=(
            "numeric id of the owner; with repository_id, the subjects use GitHub's immutable "
            "format repo:OWNER@OWNER-ID/REPO@REPO-ID:..."
        ),
    )
    repository_id: int | None = Field(default=None, ge=1, validate_default=True)
    branches: list[Branch] = Field(
        default_factory=list,
        description="jobs without a GitHub environment may deploy from these branches",
    )
    environments: list[GitHubEnvironmentName] = Field(
        default_factory=list,
        validate_default=True,
        description="jobs that declare one of these GitHub environments may deploy",
    )
    oidc_provider_arn: str | None = Field(
        default=None,
        description=(
            "ARN of the account's existing GitHub OIDC provider; without it the stack creates one"
        ),
    )

    @field_validator("repository")
    @classmethod
    def _check_repository(cls, value: str) -> str:
        _reject_wildcards(value, "repository as OWNER/REPO")
        owner, slash, name = value.partition("/")
        valid = (
            slash
            and GITHUB_OWNER_PATTERN.fullmatch(owner)
            and GITHUB_REPOSITORY_NAME_PATTERN.fullmatch(name)
            and name not in {".", ".."}
        )
        if not valid:
            raise ValueError(
                f"{value!r} is not a GitHub repository of the form OWNER/REPO "
                "(e.g. octo-org/octo-repo)"
            )
        return value

    @field_validator("oidc_provider_arn")
    @classmethod
    def _check_provider_arn(cls, value: str | None) -> str | None:
        if value is not None and not OIDC_PROVIDER_ARN_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not the ARN of a GitHub OIDC provider; expected "
                f"arn:aws:iam::ACCOUNT:oidc-provider/{GITHUB_OIDC_HOST}"
            )
        return value

    # These two checks sit on the later field of each pair so that they run beside the other
    # fields' checks and every problem is listed at once. info.data lacks a field that failed.
    @field_validator("repository_id")
    @classmethod
    def _check_ids_together(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "owner_id" in info.data and (info.data["owner_id"] is None) != (value is None):
            raise ValueError(
                "set owner_id and repository_id together (GitHub's immutable subject format "
                "needs both), or neither"
            )
        return value

    @field_validator("environments")
    @classmethod
    def _check_some_subject(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value and info.data.get("branches") == []:
            raise ValueError(
                "set branches, environments or both: the role must trust at least one subject"
            )
        return value

    @property
    def subject_repository(self) -> str:
        """Return the repository part of a `sub` claim: OWNER/REPO, or its immutable form."""
        if self.owner_id is None:
            return self.repository
        owner, name = self.repository.split("/")
        return f"{owner}@{self.owner_id}/{name}@{self.repository_id}"

    def subjects(self) -> list[str]:
        """List every `sub` claim the deploy role accepts, branches first, without repeats.

        GitHub's documented formats: a job with a GitHub environment gets
        `repo:OWNER/REPO:environment:NAME`; otherwise a pull request event gets
        `repo:OWNER/REPO:pull_request`, and any other event `repo:OWNER/REPO:ref:refs/heads/BRANCH`
        (docs.github.com/en/actions/reference/security/oidc, "Example subject claims").
        """
        prefix = f"repo:{self.subject_repository}"
        subjects = [f"{prefix}:ref:refs/heads/{branch}" for branch in self.branches]
        subjects += [
            f"{prefix}:environment:{encode_subject_value(name)}" for name in self.environments
        ]
        return list(dict.fromkeys(subjects))
