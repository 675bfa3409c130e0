"""Optional EC2 key pair that lets an operator log in to the EB instances over SSH."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class SshKeyPairArgs:
    """Inputs of SshKeyPair."""

    # OpenSSH public key (ssh-rsa or ssh-ed25519), as checked by the settings.
    public_key: str
    tags: dict[str, str]


class SshKeyPair(pulumi.ComponentResource):
    """EC2 key pair imported from a public key. EB installs it on every instance it launches."""

    key_pair: aws.ec2.KeyPair
    key_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: SshKeyPairArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:ssh:SshKeyPair", name, None, opts)

        # A prefix instead of a fixed name: a new public key replaces the key pair, and
        # the replacement is created before the old one is deleted, so the names differ.
        self.key_pair = aws.ec2.KeyPair(
            name,
            key_name_prefix=f"{name}-",
            public_key=args.public_key,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_name = self.key_pair.key_name
        self.register_outputs({"keyName": self.key_name})
