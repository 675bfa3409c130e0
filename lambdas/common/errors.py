"""Errors raised by the task handlers.

Lambda reports an unhandled exception to Step Functions with the exception's class name as the
error name, so each class below is named exactly as the workflow's Retry, Catch and Fail states
refer to it. Each message names what failed and how to fix it.
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base class of every error the workflow handles by name."""


class InvalidRequest(ControlPlaneError):
    """The execution input failed validation; nothing was touched."""


class EnvironmentLocked(ControlPlaneError):
    """Another request holds the environment's deployment lock (retried by the workflow)."""


class LeaseLost(ControlPlaneError):
    """The request no longer holds the environment's lease (its fencing token is stale)."""


class ConfigurationMissing(ControlPlaneError):
    """A required secret or setting is not set."""


class BundleInvalid(ControlPlaneError):
    """The application bundle is missing or malformed."""


class StackNotSelected(ControlPlaneError):
    """The Pulumi stack found is not the one the environment expects."""


class StackLocked(ControlPlaneError):
    """The Pulumi stack stayed locked by another update."""


class PreviewFailed(ControlPlaneError):
    """`pulumi preview` failed for a reason other than detected changes."""


class UpFailed(ControlPlaneError):
    """`pulumi up` (or the CodeBuild build running it) failed."""


class OutputsNotAvailable(ControlPlaneError):
    """The stack outputs could not be read (retried, then the fallback runs)."""


class EnvironmentNotReady(ControlPlaneError):
    """The Elastic Beanstalk environment is not Ready yet (retried by the workflow)."""


class WaitTimedOut(ControlPlaneError):
    """A wait on the environment spent its budget; not retried (see lambdas/common/waits.py)."""


class EnvironmentBusy(ControlPlaneError):
    """Elastic Beanstalk refused an update because an operation is in progress (retried)."""


class VersionConflict(ControlPlaneError):
    """The version label already exists with a different bundle."""


class DeploymentFailed(ControlPlaneError):
    """The environment did not end up running the requested version."""


class HealthCheckFailed(ControlPlaneError):
    """EB health or the app's health URL did not report the expected version as healthy."""


class RollbackFailed(ControlPlaneError):
    """The environment could not be put back on its previous version."""


class RecoveryCancelled(ControlPlaneError):
    """A queued recovery found its environment destroyed on purpose or under maintenance."""


# Names of every error that ends an execution in a Fail state of the same name.
FAILURE_NAMES: tuple[str, ...] = (
    "InvalidRequest",
    "EnvironmentLocked",
    "LeaseLost",
    "ConfigurationMissing",
    "BundleInvalid",
    "StackNotSelected",
    "StackLocked",
    "PreviewFailed",
    "UpFailed",
    "OutputsNotAvailable",
    "EnvironmentNotReady",
    "WaitTimedOut",
    "EnvironmentBusy",
    "VersionConflict",
    "DeploymentFailed",
    "HealthCheckFailed",
    "RolledBack",
    "RollbackFailed",
    "RecoveryCancelled",
)

# Fail state for any error outside FAILURE_NAMES (a crashed task, a Step Functions runtime error).
UNEXPECTED_FAILURE = "UnexpectedError"


def ended_execution_error(status: str) -> str:
    """Return the error name of an execution that ended `status` without recording an outcome,
    such as ExecutionAborted for ABORTED or ExecutionTimedOut for TIMED_OUT."""
    return f"Execution{status.title().replace('_', '')}"
