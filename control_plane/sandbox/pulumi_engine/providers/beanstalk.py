"""Elastic Beanstalk application and environment, created in the sandbox's EB API."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import PartialUpdateError, ProviderError
from ..simulation import EB_NORMALIZED_SETTINGS, eb_stored_value
from ..state import ResourceState, is_secret, wrap_secret
from .base import ResourceProvider, comparable, diff_properties, plain, stable_hex
from .calls import call_aws

TERMINATED = "Terminated"
# The only namespace whose settings the AWS provider keys by resource name as well.
SCHEDULED_ACTION_NAMESPACE = "aws:autoscaling:scheduledaction"


class BeanstalkApplication(ResourceProvider):
    """`aws:elasticbeanstalk/application:Application`; its id is the application name."""

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        values = plain(inputs)
        name = values["name"]
        params: dict[str, Any] = {"ApplicationName": name, "Tags": _tag_list(values)}
        if values.get("description"):
            params["Description"] = values["description"]
        lifecycle = _lifecycle_config(values.get("appversionLifecycle"))
        if lifecycle:
            params["ResourceLifecycleConfig"] = lifecycle

        eb = self.context.client("elasticbeanstalk")
        response = call_aws(
            f"creating Elastic Beanstalk Application ({name})", eb.create_application, **params
        )
        arn = response.get("Application", {}).get("ApplicationArn") or self._arn(name)
        return name, {**inputs, "id": name, "arn": arn, "tagsAll": values.get("tags") or {}}

    def update(
        self, old: ResourceState, inputs: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        values = plain(inputs)
        name = values["name"]
        eb = self.context.client("elasticbeanstalk")
        action = f"updating Elastic Beanstalk Application ({name})"
        if "description" in changed:
            call_aws(
                action,
                eb.update_application,
                ApplicationName=name,
                Description=values.get("description") or "",
            )
        if "appversionLifecycle" in changed:
            lifecycle = _lifecycle_config(values.get("appversionLifecycle"))
            if lifecycle:
                call_aws(
                    action,
                    eb.update_application_resource_lifecycle,
                    ApplicationName=name,
                    ResourceLifecycleConfig=lifecycle,
                )
        arn = old.outputs.get("arn") or self._arn(name)
        if "tags" in changed:
            _update_tags(eb, action, arn, plain(old.inputs.get("tags")), values.get("tags"))
        return {**old.outputs, **inputs, "arn": arn, "tagsAll": values.get("tags") or {}}

    def delete(self, old: ResourceState) -> None:
        eb = self.context.client("elasticbeanstalk")
        call_aws(
            f"deleting Elastic Beanstalk Application ({old.id})",
            eb.delete_application,
            ApplicationName=old.id,
            TerminateEnvByForce=False,
        )

    def read(self, old: ResourceState) -> ResourceState | None:
        eb = self.context.client("elasticbeanstalk")
        response = call_aws(
            f"reading Elastic Beanstalk Application ({old.id})",
            eb.describe_applications,
            ApplicationNames=[old.id],
        )
        found = [a for a in response.get("Applications", []) if a["ApplicationName"] == old.id]
        return old if found else None

    def _arn(self, name: str) -> str:
        ctx = self.context
        return f"arn:aws:elasticbeanstalk:{ctx.region}:{ctx.account_id}:application/{name}"


class BeanstalkEnvironment(ResourceProvider):
    """`aws:elasticbeanstalk/environment:Environment`; its id is the EB EnvironmentId.

    Creation returns at once, like the AWS provider with `wait_for_ready_timeout = "0"`:
    the environment is usually still Launching when `up` ends.
    """

    replace_properties = frozenset({"name", "application", "tier", "cnamePrefix"})

    def diff(self, old: ResourceState, inputs: dict[str, Any]) -> set[str]:
        changed = diff_properties(old.inputs, inputs)
        # Settings form a set keyed by namespace, name and resource, as in the AWS provider,
        # and are compared with the values the last refresh read from EB.
        changed.discard("settings")
        if _settings_by_key(_current_settings(old)) != _settings_by_key(inputs.get("settings")):
            changed.add("settings")
        # The AWS provider compares the program with the live state, so a version deployed
        # outside Pulumi is a change of `version` unless the program ignores it.
        live_version = plain(old.outputs.get("version"))
        if live_version and plain(inputs.get("version")) != live_version:
            changed.add("version")
        return changed

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        values = plain(inputs)
        name = values["name"]
        params: dict[str, Any] = {
            "ApplicationName": values["application"],
            "EnvironmentName": name,
            "OptionSettings": [_option_setting(s) for s in values.get("settings") or []],
            "Tags": _tag_list(values),
            "Tier": _tier(values.get("tier")),
        }
        optional = {
            "solutionStackName": "SolutionStackName",
            "platformArn": "PlatformArn",
            "templateName": "TemplateName",
            "cnamePrefix": "CNAMEPrefix",
            "description": "Description",
            "version": "VersionLabel",
        }
        for key, param in optional.items():
            if values.get(key):
                params[param] = values[key]

        eb = self.context.client("elasticbeanstalk")
        response = call_aws(
            f"creating Elastic Beanstalk Environment ({name})", eb.create_environment, **params
        )
        environment_id = response.get("EnvironmentId") or self._fallback_id(urn)
        return environment_id, {**inputs, **self._outputs(environment_id, values, response)}

    def update(
        self, old: ResourceState, inputs: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        values = plain(inputs)
        name = values["name"]
        eb = self.context.client("elasticbeanstalk")
        action = f"updating Elastic Beanstalk Environment ({name})"

        params: dict[str, Any] = {}
        if "settings" in changed:
            to_set, to_remove = _option_changes(
                plain(_current_settings(old)) or [], values.get("settings") or []
            )
            if to_set:
                params["OptionSettings"] = to_set
            if to_remove:
                params["OptionsToRemove"] = to_remove
        for key, param in (
            ("solutionStackName", "SolutionStackName"),
            ("platformArn", "PlatformArn"),
            ("templateName", "TemplateName"),
            ("description", "Description"),
        ):
            if key in changed and values.get(key):
                params[param] = values[key]
        if "version" in changed and values.get("version"):
            params["VersionLabel"] = values["version"]

        # Tags go first, then UpdateEnvironment, in the AWS provider's order. EB runs an
        # environment update for a tag change, so the environment can still be Updating
        # when UpdateEnvironment arrives, and EB rejects that call as not Ready.
        # NOTE: whether pulumi-aws 6.83 waits for Ready between the two calls is unverified;
        # this engine does not wait.
        arn = old.outputs.get("arn") or self._arn(values["application"], name)
        tags_applied = False
        if "tags" in changed:
            _update_tags(eb, action, arn, plain(old.inputs.get("tags")), values.get("tags"))
            tags_applied = True

        response: dict[str, Any] = {}
        if params:
            try:
                response = call_aws(action, eb.update_environment, **self._target(old), **params)
            except ProviderError as error:
                if not tags_applied:
                    raise
                raise PartialUpdateError(
                    str(error),
                    inputs={**old.inputs, "tags": inputs.get("tags")},
                    outputs={
                        **old.outputs,
                        "tags": inputs.get("tags"),
                        "tagsAll": values.get("tags") or {},
                    },
                ) from error

        outputs = {**old.outputs, **inputs, "tagsAll": values.get("tags") or {}}
        outputs["allSettings"] = values.get("settings") or []
        for key, field in (("cname", "CNAME"), ("endpointUrl", "EndpointURL")):
            if response.get(field):
                outputs[key] = response[field]
        return outputs

    def delete(self, old: ResourceState) -> None:
        if self._describe(old) is None:
            return
        eb = self.context.client("elasticbeanstalk")
        call_aws(
            f"deleting Elastic Beanstalk Environment ({old.inputs.get('name')})",
            eb.terminate_environment,
            **self._target(old),
        )

    def read(self, old: ResourceState) -> ResourceState | None:
        """Refresh from DescribeEnvironments; a Terminated or missing environment is gone.

        Environments that are Launching, Updating or Terminating stay in state, as the
        AWS provider keeps them.
        """
        live = self._describe(old)
        if live is None or live.get("Status") == TERMINATED:
            return None
        outputs = dict(old.outputs)
        for key, field in (
            ("cname", "CNAME"),
            ("endpointUrl", "EndpointURL"),
            ("version", "VersionLabel"),
            ("arn", "EnvironmentArn"),
        ):
            if live.get(field) not in (None, ""):
                outputs[key] = str(live[field])
        outputs.update(self._read_settings(old))
        return dataclasses.replace(old, outputs=outputs)

    def _read_settings(self, old: ResourceState) -> dict[str, Any]:
        """Read the option settings back from EB, as the AWS provider does on refresh.

        `settings` keeps the state's settings that EB returns, with EB's values, and
        `allSettings` lists every setting EB returns. A setting whose value was secret in
        state stays secret.
        """
        eb = self.context.client("elasticbeanstalk")
        name = plain(old.inputs.get("name"))
        application = plain(old.inputs.get("application"))
        response = call_aws(
            f"reading Elastic Beanstalk Environment ({name}) settings",
            eb.describe_configuration_settings,
            ApplicationName=application,
            EnvironmentName=name,
        )
        groups = response.get("ConfigurationSettings") or []
        if len(groups) != 1:
            raise ProviderError(
                f"reading Elastic Beanstalk Environment ({name}) settings: received "
                f"{len(groups)} settings groups, expected 1"
            )
        normalize = EB_NORMALIZED_SETTINGS in self.context.simulations
        live: dict[tuple[str, str, str], dict[str, str]] = {}
        for option in groups[0].get("OptionSettings") or []:
            setting = {"namespace": option["Namespace"], "name": option["OptionName"]}
            if option.get("ResourceName") and option["Namespace"] == SCHEDULED_ACTION_NAMESPACE:
                setting["resource"] = option["ResourceName"]
            value = option.get("Value") or ""
            if normalize:
                value = eb_stored_value(option["Namespace"], option["OptionName"], value)
            setting["value"] = value
            live[_option_key(setting)] = setting

        current = _current_settings(old)
        whole_list_secret = is_secret(current)
        items = current.get("value") if whole_list_secret else current
        refreshed: list[Any] = []
        any_secret = whole_list_secret
        for item in items or []:
            item_secret = is_secret(item)
            fields = item.get("value") if item_secret else item
            key = _option_key(plain(fields))
            if key not in live:
                continue
            value: Any = live[key]["value"]
            if is_secret(fields.get("value")):
                value = wrap_secret(value)
                any_secret = True
            setting = {**fields, "value": value}
            refreshed.append(wrap_secret(setting) if item_secret else setting)
            any_secret = any_secret or item_secret
        all_settings: Any = list(live.values())
        return {
            "settings": wrap_secret(refreshed) if whole_list_secret else refreshed,
            "allSettings": wrap_secret(all_settings) if any_secret else all_settings,
        }

    # Helpers -------------------------------------------------------------------------

    def _describe(self, old: ResourceState) -> dict[str, Any] | None:
        """The environment of `old` as DescribeEnvironments returns it, or None."""
        eb = self.context.client("elasticbeanstalk")
        name = plain(old.inputs.get("name"))
        application = plain(old.inputs.get("application"))
        action = f"reading Elastic Beanstalk Environment ({name})"

        response = call_aws(action, eb.describe_environments, EnvironmentIds=[old.id])
        environments = response.get("Environments", [])
        by_id = [e for e in environments if e.get("EnvironmentId") == old.id]
        if by_id:
            return by_id[0]

        # An API that leaves EnvironmentId empty (moto) made the engine invent the id:
        # match by application and name instead, preferring a live environment.
        response = call_aws(
            action,
            eb.describe_environments,
            ApplicationName=application,
            EnvironmentNames=[name],
        )
        by_name = [
            e
            for e in response.get("Environments", [])
            if not e.get("EnvironmentId")
            and e.get("EnvironmentName") == name
            and e.get("ApplicationName") == application
        ]
        by_name.sort(key=lambda e: e.get("Status") == TERMINATED)
        return by_name[0] if by_name else None

    def _target(self, old: ResourceState) -> dict[str, str]:
        """Parameters naming the environment: its id when the API returns one, else its name."""
        live = self._describe(old)
        if live is not None and live.get("EnvironmentId"):
            return {"EnvironmentId": live["EnvironmentId"]}
        return {"EnvironmentName": plain(old.inputs.get("name"))}

    def _fallback_id(self, urn: str) -> str:
        return f"e-{stable_hex(urn, 10)}"

    def _arn(self, application: str, name: str) -> str:
        ctx = self.context
        prefix = f"arn:aws:elasticbeanstalk:{ctx.region}:{ctx.account_id}"
        return f"{prefix}:environment/{application}/{name}"

    def _outputs(
        self, environment_id: str, values: dict[str, Any], response: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": environment_id,
            "arn": response.get("EnvironmentArn")
            or self._arn(values["application"], values["name"]),
            # The sandbox may leave CNAME empty until the environment has launched; the
            # next refresh reads it.
            "cname": response.get("CNAME") or "",
            "endpointUrl": response.get("EndpointURL") or "",
            "version": str(response.get("VersionLabel") or ""),
            "platformArn": response.get("PlatformArn") or "",
            "tier": values.get("tier") or "WebServer",
            "tagsAll": values.get("tags") or {},
            "allSettings": values.get("settings") or [],
            "autoscalingGroups": [],
            "instances": [],
            "launchConfigurations": [],
            "loadBalancers": [],
            "queues": [],
            "triggers": [],
        }


def _tag_list(values: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": str(value)} for key, value in (values.get("tags") or {}).items()]


def _tier(tier: str | None) -> dict[str, str]:
    if tier == "Worker":
        return {"Name": "Worker", "Type": "SQS/HTTP"}
    return {"Name": "WebServer", "Type": "Standard"}


def _lifecycle_config(lifecycle: dict[str, Any] | None) -> dict[str, Any] | None:
    if not lifecycle:
        return None
    config: dict[str, Any] = {}
    if lifecycle.get("serviceRole"):
        config["ServiceRole"] = lifecycle["serviceRole"]
    if lifecycle.get("maxCount"):
        config["VersionLifecycleConfig"] = {
            "MaxCountRule": {
                "Enabled": True,
                "MaxCount": int(lifecycle["maxCount"]),
                "DeleteSourceFromS3": bool(lifecycle.get("deleteSourceFromS3")),
            }
        }
    elif lifecycle.get("maxAgeInDays"):
        config["VersionLifecycleConfig"] = {
            "MaxAgeRule": {
                "Enabled": True,
                "MaxAgeInDays": int(lifecycle["maxAgeInDays"]),
                "DeleteSourceFromS3": bool(lifecycle.get("deleteSourceFromS3")),
            }
        }
    return config


def _option_key(setting: dict[str, Any]) -> tuple[str, str, str]:
    return (setting["namespace"], setting["name"], setting.get("resource") or "")


def _current_settings(old: ResourceState) -> Any:
    """Return the settings as last read from EB (outputs), or as last sent when never read."""
    if "settings" in old.outputs:
        return old.outputs["settings"]
    return old.inputs.get("settings")


def _settings_by_key(settings: Any) -> dict[tuple[str, str, str], Any]:
    return {
        _option_key(setting): comparable(setting.get("value")) for setting in plain(settings) or []
    }


def _option_setting(setting: dict[str, Any]) -> dict[str, str]:
    option = {
        "Namespace": setting["namespace"],
        "OptionName": setting["name"],
        "Value": str(setting.get("value", "")),
    }
    if setting.get("resource"):
        option["ResourceName"] = setting["resource"]
    return option


def _option_changes(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Option settings to set (new or changed) and to remove (gone from the program)."""
    old_values = {_option_key(s): str(s.get("value", "")) for s in old}
    new_by_key = {_option_key(s): s for s in new}
    to_set = [
        _option_setting(setting)
        for key, setting in new_by_key.items()
        if old_values.get(key) != str(setting.get("value", ""))
    ]
    to_remove = []
    for key in old_values:
        if key not in new_by_key:
            removal = {"Namespace": key[0], "OptionName": key[1]}
            if key[2]:
                removal["ResourceName"] = key[2]
            to_remove.append(removal)
    return to_set, to_remove


def _update_tags(
    eb: Any,
    action: str,
    arn: str,
    old_tags: dict[str, str] | None,
    new_tags: dict[str, str] | None,
) -> None:
    old_tags = old_tags or {}
    new_tags = new_tags or {}
    to_add = [{"Key": k, "Value": str(v)} for k, v in new_tags.items() if old_tags.get(k) != v]
    to_remove = [key for key in old_tags if key not in new_tags]
    params: dict[str, Any] = {"ResourceArn": arn}
    if to_add:
        params["TagsToAdd"] = to_add
    if to_remove:
        params["TagsToRemove"] = to_remove
    if to_add or to_remove:
        call_aws(action, eb.update_tags_for_resource, **params)
