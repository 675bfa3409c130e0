"""Elastic Beanstalk option settings that EB stores in another form than it was sent.

After a refresh, the AWS provider's state contains the values that EB returns from
DescribeConfigurationSettings. When EB rewrote a value, the program's value differs from the
state on every preview although an update would change nothing. The drift check ignores a
settings diff whose differences are all listed here; every such rule belongs in this table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OptionKey = tuple[str, str, str]


def comma_separated(value: str) -> str:
    """Return the items of a comma-separated value in order, without surrounding spaces."""
    return ",".join(item.strip() for item in value.split(","))


def unordered_comma_separated(value: str) -> str:
    """Return the items of a comma-separated value sorted, without surrounding spaces."""
    return ",".join(sorted(item.strip() for item in value.split(",")))


# (namespace, option name) -> the form both sides are compared in.
EB_REWRITTEN_OPTIONS: dict[tuple[str, str], Callable[[str], str]] = {
    # EB returns "t3.micro, t3.small" for "t3.micro,t3.small" (DescribeConfigurationSettings).
    ("aws:ec2:instances", "InstanceTypes"): comma_separated,
    # EB stores "tcp, 22, 22, 10.0.0.0/8" as "tcp,22,22,10.0.0.0/8" (reported by users of
    # the cloudposse terraform-aws-elastic-beanstalk-environment module).
    ("aws:autoscaling:launchconfiguration", "SSHSourceRestriction"): comma_separated,
    # EB returns subnet lists in its own order, so the Terraform AWS provider under pulumi-aws
    # sorts them when it reads them (internal/service/elasticbeanstalk/environment.go).
    ("aws:ec2:vpc", "Subnets"): unordered_comma_separated,
    ("aws:ec2:vpc", "ELBSubnets"): unordered_comma_separated,
}


def _by_key(settings: Any) -> dict[OptionKey, str] | None:
    if not isinstance(settings, list):
        return None
    by_key: dict[OptionKey, str] = {}
    for setting in settings:
        if not isinstance(setting, dict) or "namespace" not in setting or "name" not in setting:
            return None
        key = (setting["namespace"], setting["name"], setting.get("resource") or "")
        by_key[key] = str(setting.get("value", ""))
    return by_key


def settings_noise(old: Any, new: Any) -> list[dict[str, str]] | None:
    """Return the differences between two EB `settings` lists when all of them are EB's
    rewrites, else None.

    Lists are compared as sets keyed by namespace, name and resource, as the AWS provider
    compares them, so an empty list means that only the order differs. A setting present on
    one side only, or a value outside the table, is a real change (None).
    """
    old_by_key = _by_key(old)
    new_by_key = _by_key(new)
    if old_by_key is None or new_by_key is None or old_by_key.keys() != new_by_key.keys():
        return None
    ignored = []
    for key, new_value in new_by_key.items():
        old_value = old_by_key[key]
        if old_value == new_value:
            continue
        rewrite = EB_REWRITTEN_OPTIONS.get((key[0], key[1]))
        if rewrite is None or rewrite(old_value) != rewrite(new_value):
            return None
        ignored.append({"setting": f"{key[0]}:{key[1]}", "old": old_value, "new": new_value})
    return ignored
