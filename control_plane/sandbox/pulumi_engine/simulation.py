"""AWS behaviours that tests and the sandbox switch on for one engine command.

`CONTROL_PLANE_ENGINE_SIMULATE` is a comma-separated list of:

- `expired-credentials`: configuring the AWS provider fails as with an expired session token
  (STS `ExpiredToken`).
- `invalid-credentials`: the same with an unknown access key (STS `InvalidClientTokenId`).
- `eb-normalized-settings`: a refresh reads Elastic Beanstalk option settings back in the
  form EB stores them in (see `eb_stored_value`), which differs from what the program sent.

The sandbox's moto and EB simulator accept any credentials and store option values as sent,
so these cases cannot arise there on their own.
"""

from __future__ import annotations

import uuid

from .errors import ProviderError, UsageError

SIMULATE_VARIABLE = "CONTROL_PLANE_ENGINE_SIMULATE"
EXPIRED_CREDENTIALS = "expired-credentials"
INVALID_CREDENTIALS = "invalid-credentials"
EB_NORMALIZED_SETTINGS = "eb-normalized-settings"
KNOWN = frozenset({EXPIRED_CREDENTIALS, INVALID_CREDENTIALS, EB_NORMALIZED_SETTINGS})

# AWS error code and message of STS GetCallerIdentity for each credentials case.
_CREDENTIAL_ERRORS = {
    EXPIRED_CREDENTIALS: ("ExpiredToken", "The security token included in the request is expired"),
    INVALID_CREDENTIALS: (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    ),
}


def parse_simulations(environ: dict[str, str]) -> frozenset[str]:
    """Return the behaviours named by CONTROL_PLANE_ENGINE_SIMULATE.

    Raises UsageError for an unknown name.
    """
    names = {name.strip() for name in environ.get(SIMULATE_VARIABLE, "").split(",") if name.strip()}
    unknown = sorted(names - KNOWN)
    if unknown:
        raise UsageError(
            f"{SIMULATE_VARIABLE} names unknown behaviours: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN))}"
        )
    return frozenset(names)


def check_credentials(simulations: frozenset[str], provider_urn: str) -> None:
    """Raise the AWS provider's configuration error when a credentials case is switched on.

    NOTE: the wording follows the AWS provider's credential check (STS GetCallerIdentity
    when the provider is configured). Callers should match the AWS error code, not the text.
    """
    for case, (code, message) in _CREDENTIAL_ERRORS.items():
        if case not in simulations:
            continue
        provider_name = provider_urn.rsplit("::", 1)[-1]
        raise ProviderError(
            f"pulumi:providers:aws resource '{provider_name}' has a problem: unable to "
            "validate AWS credentials.\n"
            "Details: validating provider credentials: retrieving caller identity from STS: "
            "operation error STS: GetCallerIdentity, https response error StatusCode: 403, "
            f"RequestID: {uuid.uuid4()}, api error {code}: {message}",
            urn=provider_urn,
        )


def eb_stored_value(namespace: str, option: str, value: str) -> str:
    """Return an option value in the form EB stores it.

    EB returns `aws:ec2:instances` `InstanceTypes` with ", " between the types, for example
    "t3.micro, t3.small" for "t3.micro,t3.small" (DescribeConfigurationSettings output).
    Other values come back unchanged.
    """
    if (namespace, option) == ("aws:ec2:instances", "InstanceTypes"):
        return ", ".join(part.strip() for part in value.split(","))
    return value
