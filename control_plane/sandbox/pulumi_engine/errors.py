"""Errors of the local Pulumi engine, each carrying the exit code the real CLI uses.

Exit codes follow the Pulumi CLI since 3.227.0 (`pkg/cmd/pulumi/cmd/exit_codes.go`):
0 ok, 1 generic error, 2 invalid invocation or configuration, 6 stack not found,
7 `--expect-no-changes` violated, 255 internal error.
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_CONFIGURATION = 2
EXIT_STACK_NOT_FOUND = 6
EXIT_NO_CHANGES_EXPECTED = 7
EXIT_INTERNAL = 255


class EngineError(Exception):
    """An error that ends the command; `str(error)` is printed after `error: `."""

    exit_code = EXIT_ERROR


class UsageError(EngineError):
    """Invalid flags or arguments."""

    exit_code = EXIT_CONFIGURATION


class ConfigurationError(EngineError):
    """Invalid or missing project, stack or secrets configuration."""

    exit_code = EXIT_CONFIGURATION


class StackNotFoundError(EngineError):
    """The stack does not exist in the backend, or no stack is selected."""

    exit_code = EXIT_STACK_NOT_FOUND


class StackLockedError(EngineError):
    """Another run holds a lock on the stack; the message lists each lock file."""


class NoChangesExpectedError(EngineError):
    """`--expect-no-changes` was passed and the operation proposed changes."""

    exit_code = EXIT_NO_CHANGES_EXPECTED


class UnsafeEndpointError(EngineError):
    """The AWS endpoint is not a loopback address, so the engine rejects the command."""

    exit_code = EXIT_INTERNAL


class ProviderError(EngineError):
    """An AWS call made for a resource failed.

    `urn` names the resource that the failure belongs to when it is not the resource being
    registered, such as the default provider whose configuration failed.
    """

    def __init__(self, message: str, *, urn: str = "") -> None:
        super().__init__(message)
        self.urn = urn


class PartialUpdateError(ProviderError):
    """An update failed after some of its changes reached AWS.

    `inputs` and `outputs` describe the resource as it is after the applied part, so the
    state records that part and the next update retries only the rest.
    """

    def __init__(self, message: str, *, inputs: dict, outputs: dict) -> None:
        super().__init__(message)
        self.inputs = inputs
        self.outputs = outputs


class ProgramError(EngineError):
    """The Pulumi program raised an exception."""
