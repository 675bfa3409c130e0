"""Optional PostgreSQL database reachable only from the app's instances."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .settings import DatabaseSettings

POSTGRES_PORT = 5432


@dataclass
class DatabaseArgs:
    """Inputs of Database."""

    settings: DatabaseSettings
    instance_security_group_id: pulumi.Input[str]
    tags: dict[str, str]


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL instance with encrypted storage and its own security group.

    The master password comes only from the secret config key `db:password`; Pulumi keeps
    it encrypted in state because the input is a secret Output.
    """

    security_group: aws.ec2.SecurityGroup
    instance: aws.rds.Instance
    address: pulumi.Output[str]
    port: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        args: DatabaseArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:database:Database", name, None, opts)
        settings = args.settings

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description="PostgreSQL from the web app instances only",
            ingress=[
                {
                    "description": "PostgreSQL from the EB instances",
                    "protocol": "tcp",
                    "from_port": POSTGRES_PORT,
                    "to_port": POSTGRES_PORT,
                    "security_groups": [args.instance_security_group_id],
                }
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.instance = aws.rds.Instance(
            name,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            allocated_storage=settings.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=settings.name,
            username=settings.username,
            password=settings.password,
            port=POSTGRES_PORT,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            backup_retention_period=7,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=settings.skip_final_snapshot,
            final_snapshot_identifier=None if settings.skip_final_snapshot else f"{name}-final",
            copy_tags_to_snapshot=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.address = self.instance.address
        self.port = self.instance.port
        self.register_outputs({"address": self.address, "port": self.port})
