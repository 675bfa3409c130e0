"""AWS behaviours that tests and the sandbox switch on for one engine command.

`CONTROL_PLANE_ENGINE_SIMULATE` is a comma-separated list of:

- `expired-credentials`: configuring the AWS provider fails as with an expired session token
  (STS `ExpiredToken`).
- `invalid-credentials`: the same with an unknown access key (STS `InvalidClientTokenId`).
- `eb-normalized-settings`: a refresh reads Elastic Beanstalk option settings back in the
  form EB stores them in (see `eb_stored_value`), which differs from what the program sent.

The sandbox's moto and EB simulator accept any credentials and store option values as sent,
so these cases cannot arise there on their own.

`CONTROL_PLANE_ENGINE_PREVIEW_OUTPUT_KIB` makes the program print that many KiB of text
during each preview, as a program that logs a lot does. The lines reach the preview's
output as `info` diagnostics of the root stack resource.
"""

from __future__ import annotations

import uuid

from .errors import ProviderError, UsageError

SIMULATE_VARIABLE = "CONTROL_PLANE_ENGINE_SIMULATE"
PREVIEW_OUTPUT_VARIABLE = "CONTROL_PLANE_ENGINE_PREVIEW_OUTPUT_KIB"
# Upper bound of the simulated program output, so a typo cannot fill the disk.
MAX_PREVIEW_OUTPUT_KIB = 64 * 1024
PROGRAM_OUTPUT_LINE_BYTES = 128
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


def preview_output_kib(environ: dict[str, str]) -> int:
    """Return the KiB of program output each preview prints (0 unless the variable is set).

    Raises UsageError for a value that is not a whole number from 0 to MAX_PREVIEW_OUTPUT_KIB.
    """
    raw = environ.get(PREVIEW_OUTPUT_VARIABLE, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > MAX_PREVIEW_OUTPUT_KIB:
        raise UsageError(
            f"{PREVIEW_OUTPUT_VARIABLE}={raw!r} is invalid: expected a whole number of KiB "
            f"from 0 to {MAX_PREVIEW_OUTPUT_KIB}"
        )
    return int(raw)


def program_output_lines(kib: int) -> list[str]:
    """Return numbered lines of PROGRAM_OUTPUT_LINE_BYTES bytes each (newline included)
    that add up to `kib` KiB."""
    count = kib * 1024 // PROGRAM_OUTPUT_LINE_BYTES
    lines = []
    for number in range(1, count + 1):
        text = f"program output line {number} of {count}: "
        lines.append(text.ljust(PROGRAM_OUTPUT_LINE_BYTES - 1, "."))
    return lines


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
