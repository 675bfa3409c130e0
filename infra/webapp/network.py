"""Security group of the environment's EC2 instances."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class InstanceSecurityGroupArgs:
    """Inputs of InstanceSecurityGroup."""

    description: str
    tags: dict[str, str]


class InstanceSecurityGroup(pulumi.ComponentResource):
    """Security group attached to the EB instances.

    It allows no inbound traffic by itself: EB adds the load balancer to instance rule in
    its own security group. The database security group admits this group, so only the
    app's instances reach PostgreSQL.
    """

    security_group: aws.ec2.SecurityGroup
    security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: InstanceSecurityGroupArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:network:InstanceSecurityGroup", name, None, opts)

        # NOTE: no vpc_id, so AWS creates the group in the region's default VPC, where EB
        # also places the environment when no aws:ec2:vpc option is set.
        self.security_group = aws.ec2.SecurityGroup(
            name,
            description=args.description,
            egress=[
                {
                    "description": "Outbound to anywhere (package mirrors, AWS APIs)",
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.security_group_id = self.security_group.id
        self.register_outputs({"securityGroupId": self.security_group_id})
