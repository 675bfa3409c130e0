"""Resources the engine records in state only (IAM, EC2 security groups, RDS, ...).

Their ids and computed outputs are derived from the URN, so they look like AWS's and stay
the same from run to run. Nothing is created in the sandbox for them.
"""

from __future__ import annotations

from typing import Any

from .base import ResourceProvider, plain, stable_hex


class RecordedResource(ResourceProvider):
    """Provider for any type without sandbox side effects."""

    def new_id(self, urn: str, inputs: dict[str, Any]) -> str:
        values = plain(inputs)
        if self.type == "aws:ec2/securityGroup:SecurityGroup":
            return f"sg-{stable_hex(urn, 17)}"
        if self.type in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
            return values["name"]
        if self.type == "aws:iam/rolePolicy:RolePolicy":
            return f"{values.get('role')}:{values['name']}"
        if self.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
            return f"{values.get('role')}-{stable_hex(urn, 20)}"
        if self.type == "aws:rds/instance:Instance":
            return f"db-{stable_hex(urn, 26).upper()}"
        if self.type == "aws:acm/certificate:Certificate":
            region = self.context.region
            return (
                f"arn:aws:acm:{region}:{self.context.account_id}:certificate/{stable_hex(urn, 32)}"
            )
        if self.type == "aws:cloudfront/distribution:Distribution":
            return f"E{stable_hex(urn, 13).upper()}"
        if self.type == "aws:ec2/keyPair:KeyPair":
            return (
                values.get("keyName")
                or f"{values.get('keyNamePrefix', 'key-')}{stable_hex(urn, 8)}"
            )
        return super().new_id(urn, inputs)

    def computed_outputs(self, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        region = self.context.region
        account = self.context.account_id
        values = plain(inputs)
        outputs: dict[str, Any] = {"id": resource_id}
        if "tags" in inputs:
            outputs["tagsAll"] = values.get("tags") or {}

        if self.type == "aws:ec2/securityGroup:SecurityGroup":
            outputs["arn"] = f"arn:aws:ec2:{region}:{account}:security-group/{resource_id}"
            outputs["ownerId"] = account
            outputs["vpcId"] = values.get("vpcId") or f"vpc-{stable_hex(region, 17)}"
        elif self.type == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{account}:role/{values['name']}"
            outputs["uniqueId"] = f"AROA{stable_hex(resource_id, 17).upper()}"
        elif self.type == "aws:iam/instanceProfile:InstanceProfile":
            outputs["arn"] = f"arn:aws:iam::{account}:instance-profile/{values['name']}"
            outputs["uniqueId"] = f"AIPA{stable_hex(resource_id, 17).upper()}"
        elif self.type == "aws:acm/certificate:Certificate":
            # One DNS validation record per name, in the shape ACM returns them.
            names = [values.get("domainName"), *(values.get("subjectAlternativeNames") or [])]
            outputs["arn"] = resource_id
            outputs["domainValidationOptions"] = [
                _validation_option(name) for name in dict.fromkeys(name for name in names if name)
            ]
        elif self.type == "aws:cloudfront/distribution:Distribution":
            outputs["arn"] = f"arn:aws:cloudfront::{account}:distribution/{resource_id}"
            outputs["domainName"] = f"d{stable_hex(resource_id, 13)}.cloudfront.net"
            # CloudFront's fixed hosted zone id for alias records.
            outputs["hostedZoneId"] = "Z2FDTNDATAQYW2"
            outputs["status"] = "Deployed"
        elif self.type == "aws:ec2/keyPair:KeyPair":
            outputs["keyName"] = resource_id
            outputs["arn"] = f"arn:aws:ec2:{region}:{account}:key-pair/{resource_id}"
        elif self.type == "aws:rds/instance:Instance":
            identifier = values["identifier"]
            address = f"{identifier}.{stable_hex(account + region, 12)}.{region}.rds.amazonaws.com"
            port = values.get("port") or 5432
            outputs.update(
                {
                    "address": address,
                    "endpoint": f"{address}:{port}",
                    "port": port,
                    "arn": f"arn:aws:rds:{region}:{account}:db:{identifier}",
                    "resourceId": resource_id,
                    "status": "available",
                }
            )
        return outputs


def _validation_option(name: str) -> dict[str, str]:
    """Return ACM's DNS validation record for a name; `*.x` and `x` share one record."""
    base = name.removeprefix("*.")
    return {
        "domainName": name,
        "resourceRecordName": f"_{stable_hex(base, 32)}.{base}.",
        "resourceRecordType": "CNAME",
        "resourceRecordValue": f"_{stable_hex(base, 32)}.acm-validations.aws.",
    }
