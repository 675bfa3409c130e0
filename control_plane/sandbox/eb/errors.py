"""Errors that the Elastic Beanstalk simulator returns as Query-protocol error responses.

Messages copy the texts that the real API returns where they are known, because the control
plane and the tools it drives match on them.
"""

from __future__ import annotations


class ElasticBeanstalkError(Exception):
    """An API error: the wire code, the message and the HTTP status of the error response."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def sender_fault(self) -> bool:
        """Whether the caller caused the error (``Sender``) rather than the service."""
        return self.status < 500


def invalid_parameter(message: str) -> ElasticBeanstalkError:
    return ElasticBeanstalkError("InvalidParameterValue", message)


def missing_parameter(message: str) -> ElasticBeanstalkError:
    return ElasticBeanstalkError("MissingRequiredParameter", message)


def application_not_found(application_name: str) -> ElasticBeanstalkError:
    return invalid_parameter(f"No Application named '{application_name}' found.")


def version_not_found(version_label: str) -> ElasticBeanstalkError:
    return invalid_parameter(f"No Application Version named '{version_label}' found.")


def environment_not_found(field: str, value: str) -> ElasticBeanstalkError:
    """Build the error for a missing environment; ``field`` is EnvironmentName or EnvironmentId."""
    return invalid_parameter(f"No Environment found for {field} = '{value}'.")


def environment_not_ready(environment_name: str) -> ElasticBeanstalkError:
    return invalid_parameter(
        f"Environment named {environment_name} is in an invalid state for this operation. "
        "Must be Ready."
    )


def unsupported_action(action: str) -> ElasticBeanstalkError:
    return ElasticBeanstalkError(
        "InvalidAction",
        f"The action {action} is not implemented by the Elastic Beanstalk sandbox.",
    )
