"""Private, encrypted, versioned S3 buckets: app version bundles, static site, dashboard."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class PrivateBucketArgs:
    """Inputs of PrivateBucket and AppVersionsBucket."""

    tags: dict[str, str]


class PrivateBucket(pulumi.ComponentResource):
    """Private S3 bucket with its encryption, versioning, ownership and access settings.

    Encrypted with SSE-S3, versioned so an overwritten object can be recovered, owned by
    the bucket owner (ACLs off), closed to the public, and reachable only over TLS.
    """

    # Pulumi type token of the component. It is part of every child's URN, so changing it
    # for an existing stack makes Pulumi replace the bucket.
    component_type = "webapp:storage:PrivateBucket"

    bucket: aws.s3.BucketV2
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: PrivateBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(self.component_type, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The name is autonamed (logical name plus a random suffix) because bucket names
        # are global; the program exports it, for example as appVersionsBucketName.
        self.bucket = aws.s3.BucketV2(name, tags=args.tags, opts=child)
        bucket_id = self.bucket.id

        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioningV2(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfigurationV2(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        # The policy is applied after the public access block, so the bucket never has
        # the policy without the block.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(_tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )

        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "arn": self.arn})


class AppVersionsBucket(PrivateBucket):
    """Private bucket for EB application version bundles."""

    # The type token from before PrivateBucket existed, so existing stacks keep their URNs.
    component_type = "webapp:storage:AppVersionsBucket"


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
