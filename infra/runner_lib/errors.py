"""Named runner failures. Each name is an error the state machine catches by name."""

from __future__ import annotations


class RunnerError(Exception):
    """A failure reported in the result document as `{"name": ..., "message": ...}`."""

    name = "RunnerError"


class StackLocked(RunnerError):
    """Another Pulumi run held the stack's lock through every retry."""

    name = "StackLocked"


class PreviewFailed(RunnerError):
    """`pulumi preview` failed for a reason other than proposed changes."""

    name = "PreviewFailed"


class UpFailed(RunnerError):
    """`pulumi up`, or a recovery step before it, failed."""

    name = "UpFailed"


class StackNotSelected(RunnerError):
    """The stack could not be selected, or another stack was selected."""

    name = "StackNotSelected"


class ConfigurationMissing(RunnerError):
    """Required configuration (environment, secret, CLI version) is missing or invalid."""

    name = "ConfigurationMissing"
