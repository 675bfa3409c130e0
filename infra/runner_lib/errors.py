"""Named runner failures. Each name is an error the state machine catches by name."""

from __future__ import annotations


class RunnerError(Exception):
    """A failure reported in the result document as `{"name": ..., "message": ...}`."""

    name = "RunnerError"


class StackLocked(RunnerError):  # noqa: N818 (the workflow's error name)
    """Another Pulumi run held the stack's lock through every retry."""

    name = "StackLocked"


class PreviewFailed(RunnerError):  # noqa: N818
    """`pulumi preview` failed for a reason other than proposed changes."""

    name = "PreviewFailed"


class UpFailed(RunnerError):  # noqa: N818
    """`pulumi up`, or a recovery step before it, failed."""

    name = "UpFailed"


class StackNotSelected(RunnerError):  # noqa: N818
    """The stack could not be selected, or another stack was selected."""

    name = "StackNotSelected"


class ConfigurationMissing(RunnerError):  # noqa: N818
    """Required configuration (environment, secret, CLI version) is missing or invalid."""

    name = "ConfigurationMissing"
