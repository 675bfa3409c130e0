"""Secret values for the stack config, read from SSM Parameter Store or Secrets Manager.

PULUMI_SECRETS carries references only: `{"db:password": {"source": "ssm", "name": ...,
"region": ...}}`, or the older `{"db:password": "/ssm/parameter/name"}`. The runner reads each
value with Powertools Parameters, which caches it for the build, so several keys of one JSON
secret cost one GetSecretValue. It then sets the value with `pulumi config set --secret` on
stdin, so no value appears on a command line, in the build log or in the result document.
A `stack_config` secret is already in the stack's settings file and is not read here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)

from .errors import ConfigurationMissing

SOURCES = ("ssm", "secretsmanager", "stack_config")
CONFIG_KEY = re.compile(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")
# One build reads each secret once; the cache only spares repeated reads within the build.
CACHE_SECONDS = 300
NOT_FOUND_CODES = frozenset({"ParameterNotFound", "ResourceNotFoundException"})


@dataclass(frozen=True)
class SecretReference:
    """The location of one secret config key's value; never the value itself."""

    key: str
    source: str
    name: str = ""
    region: str | None = None
    json_key: str | None = None

    def describe(self) -> str:
        if self.source == "ssm":
            return f"SSM parameter '{self.name}'"
        if self.source == "stack_config":
            return "the stack's config"
        where = f"Secrets Manager secret '{self.name}'"
        return f"{where} (JSON key '{self.json_key}')" if self.json_key else where

    def set_command(self) -> str:
        """Return the AWS CLI command that stores the value, with a placeholder for it."""
        region = f" --region {self.region}" if self.region else ""
        if self.source == "ssm":
            return (
                f"aws ssm put-parameter --type SecureString --name {self.name} --value <value>"
                f"{region}"
            )
        value = json.dumps({self.json_key: "<value>"}) if self.json_key else "<value>"
        return (
            f"aws secretsmanager put-secret-value --secret-id {self.name} "
            f"--secret-string '{value}'{region}"
        )


def parse_secret_references(raw: str) -> dict[str, SecretReference]:
    """Parse PULUMI_SECRETS; raise ConfigurationMissing naming the first bad entry."""
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationMissing(
            f"PULUMI_SECRETS is not valid JSON ({error.msg}); expected an object such as "
            '{"db:password": {"source": "ssm", "name": "/control-plane/dev/db-password"}}.'
        ) from error
    if not isinstance(document, dict):
        raise ConfigurationMissing(
            "PULUMI_SECRETS must be a JSON object of Pulumi config key to secret reference."
        )
    return {key: _parse_reference(key, value) for key, value in document.items()}


def _parse_reference(key: str, value: Any) -> SecretReference:
    if not CONFIG_KEY.match(key):
        raise ConfigurationMissing(
            f"PULUMI_SECRETS key {key!r} is not a Pulumi config key such as 'db:password'."
        )
    if isinstance(value, str):
        # The older form: the name of an SSM parameter in the build's region.
        value = {"source": "ssm", "name": value}
    if not isinstance(value, dict):
        raise ConfigurationMissing(
            f"PULUMI_SECRETS[{key!r}] must be an SSM parameter name or an object with "
            f"`source` ({', '.join(SOURCES)}), got a {type(value).__name__}."
        )
    source = value.get("source")
    if source not in SOURCES:
        raise ConfigurationMissing(
            f"PULUMI_SECRETS[{key!r}].source must be one of {', '.join(SOURCES)}, got {source!r}."
        )
    name = value.get("name") or ""
    if source != "stack_config" and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationMissing(
            f"PULUMI_SECRETS[{key!r}] must name its {source} parameter or secret in `name`."
        )
    fields = {"region": value.get("region"), "json_key": value.get("jsonKey")}
    for field, item in fields.items():
        if item is not None and (not isinstance(item, str) or not item):
            raise ConfigurationMissing(
                f"PULUMI_SECRETS[{key!r}].{field} must be a non-empty string or null."
            )
    return SecretReference(key=key, source=source, name=name, **fields)


class SecretReader:
    """Reads secret values through Powertools Parameters, one provider per service and region.

    `client_factory(service)` builds a boto3 client in the build's region, and
    `client_factory(service, region_name=...)` one in the reference's region. The runner's
    default factory retries in botocore's standard mode.
    """

    def __init__(self, client_factory: Callable[..., Any]) -> None:
        self._client_factory = client_factory
        self._providers: dict[tuple[str, str | None], BaseProvider] = {}

    def read(self, reference: SecretReference) -> str:
        """Return the value; raise ConfigurationMissing naming the key, its source and the fix.

        No message includes the value or any part of it.
        """
        try:
            if reference.source == "ssm":
                value = self._provider("ssm", reference.region).get(
                    reference.name, max_age=CACHE_SECONDS, decrypt=True
                )
            else:
                value = self._read_secret(reference)
        except GetParameterError as error:
            raise self._read_failure(reference, error) from None
        if isinstance(value, bytes):
            raise ConfigurationMissing(
                f"secret config key '{reference.key}': {reference.describe()} stores a binary "
                "value (SecretBinary); store the value as a SecretString."
            )
        if not isinstance(value, str) or not value:
            raise ConfigurationMissing(
                f"secret config key '{reference.key}' is empty in {reference.describe()}. "
                f"Set it with: {reference.set_command()}"
                + (" --overwrite" if reference.source == "ssm" else "")
            )
        return value

    def _read_secret(self, reference: SecretReference) -> Any:
        provider = self._provider("secretsmanager", reference.region)
        if reference.json_key is None:
            return provider.get(reference.name, max_age=CACHE_SECONDS)
        try:
            document = provider.get(reference.name, max_age=CACHE_SECONDS, transform="json")
        except TransformParameterError:
            # The parser's message is left out: it can quote part of the value.
            raise ConfigurationMissing(
                f"secret config key '{reference.key}': Secrets Manager secret "
                f"'{reference.name}' is not a JSON object, so it has no key "
                f"'{reference.json_key}'. Store it as JSON with: {reference.set_command()}"
            ) from None
        if not isinstance(document, dict) or reference.json_key not in document:
            raise ConfigurationMissing(
                f"secret config key '{reference.key}' is missing: Secrets Manager secret "
                f"'{reference.name}' has no JSON key '{reference.json_key}'. Add it with: "
                f"{reference.set_command()} (the secret string replaces the whole value, so "
                "keep its other keys)"
            )
        value = document[reference.json_key]
        if not isinstance(value, str):
            raise ConfigurationMissing(
                f"secret config key '{reference.key}': JSON key '{reference.json_key}' of "
                f"Secrets Manager secret '{reference.name}' holds a "
                f"{type(value).__name__}, not a string."
            )
        return value

    def _provider(self, service: str, region: str | None) -> BaseProvider:
        cached = self._providers.get((service, region))
        if cached is not None:
            return cached
        client = (
            self._client_factory(service)
            if region is None
            else self._client_factory(service, region_name=region)
        )
        provider: BaseProvider = (
            SSMProvider(boto3_client=client)
            if service == "ssm"
            else SecretsProvider(boto3_client=client)
        )
        self._providers[(service, region)] = provider
        return provider

    @staticmethod
    def _read_failure(reference: SecretReference, error: GetParameterError) -> ConfigurationMissing:
        # Powertools wraps the SDK's error; the original is the exception being handled.
        original = error.__context__
        code = (getattr(original, "response", None) or {}).get("Error", {}).get("Code", "")
        if code in NOT_FOUND_CODES and reference.source == "ssm":
            return ConfigurationMissing(
                f"secret config key '{reference.key}' is missing: {reference.describe()} was "
                f"not found. Create it with: {reference.set_command()}"
            )
        if code in NOT_FOUND_CODES:
            # GetSecretValue gives this code both for a missing secret and for one without a
            # current (AWSCURRENT) value.
            create = reference.set_command().replace(
                "put-secret-value --secret-id", "create-secret --name"
            )
            return ConfigurationMissing(
                f"secret config key '{reference.key}' is missing: {reference.describe()} was "
                f"not found or has no current value. Create it with: {create}, or give an "
                f"existing secret a value with: {reference.set_command()}"
            )
        return ConfigurationMissing(
            f"secret config key '{reference.key}' could not be read from "
            f"{reference.describe()}: {error}"
        )
