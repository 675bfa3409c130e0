"""S3 buckets and their configuration resources, applied to the sandbox's S3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..state import ResourceState
from .base import ResourceProvider, plain
from .calls import call_aws


class S3Bucket(ResourceProvider):
    """`aws:s3/bucketV2:BucketV2` (and the legacy `Bucket`); its id is the bucket name."""

    replace_properties = frozenset({"bucket", "bucketPrefix"})

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        values = plain(inputs)
        name = values["bucket"]
        s3 = self.context.client("s3")
        params: dict[str, Any] = {"Bucket": name}
        if self.context.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.context.region}

        action = f"creating S3 Bucket ({name})"
        call_aws(action, s3.create_bucket, **params)
        self._put_tags(action, name, values.get("tags") or {})
        return name, {**inputs, **self.computed_outputs(name, inputs)}

    def update(
        self, old: ResourceState, inputs: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        values = plain(inputs)
        if "tags" in changed:
            self._put_tags(f"updating S3 Bucket ({old.id})", old.id, values.get("tags") or {})
        return {**old.outputs, **inputs, **self.computed_outputs(old.id, inputs)}

    def delete(self, old: ResourceState) -> None:
        s3 = self.context.client("s3")
        action = f"deleting S3 Bucket ({old.id})"
        if plain(old.inputs.get("forceDestroy")):
            self._empty(action, old.id)
        call_aws(action, s3.delete_bucket, ignore_codes=("NoSuchBucket",), Bucket=old.id)

    def read(self, old: ResourceState) -> ResourceState | None:
        s3 = self.context.client("s3")
        try:
            s3.head_bucket(Bucket=old.id)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
                return None
            raise
        return old

    def computed_outputs(self, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        region = self.context.region
        return {
            "id": resource_id,
            "bucket": resource_id,
            "arn": f"arn:aws:s3:::{resource_id}",
            "bucketDomainName": f"{resource_id}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{resource_id}.s3.{region}.amazonaws.com",
            "region": region,
            "tagsAll": plain(inputs.get("tags")) or {},
        }

    def _put_tags(self, action: str, bucket: str, tags: dict[str, str]) -> None:
        s3 = self.context.client("s3")
        if tags:
            tag_set = [{"Key": key, "Value": str(value)} for key, value in tags.items()]
            call_aws(action, s3.put_bucket_tagging, Bucket=bucket, Tagging={"TagSet": tag_set})
        else:
            call_aws(action, s3.delete_bucket_tagging, Bucket=bucket)

    def _empty(self, action: str, bucket: str) -> None:
        s3 = self.context.client("s3")
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            objects = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objects:
                call_aws(action, s3.delete_objects, Bucket=bucket, Delete={"Objects": objects})


def _ownership_controls(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "OwnershipControls": {
            "Rules": [{"ObjectOwnership": values["rule"]["objectOwnership"]}],
        }
    }


def _public_access_block(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": bool(values.get("blockPublicAcls")),
            "BlockPublicPolicy": bool(values.get("blockPublicPolicy")),
            "IgnorePublicAcls": bool(values.get("ignorePublicAcls")),
            "RestrictPublicBuckets": bool(values.get("restrictPublicBuckets")),
        }
    }


def _versioning(values: dict[str, Any]) -> dict[str, Any]:
    return {"VersioningConfiguration": {"Status": values["versioningConfiguration"]["status"]}}


def _encryption(values: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in values.get("rules") or []:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        by_default = {"SSEAlgorithm": default.get("sseAlgorithm", "AES256")}
        if default.get("kmsMasterKeyId"):
            by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
        rules.append(
            {
                "ApplyServerSideEncryptionByDefault": by_default,
                "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled")),
            }
        )
    return {"ServerSideEncryptionConfiguration": {"Rules": rules}}


def _policy(values: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": values["policy"]}


# type token: (S3 put operation, build its parameters, S3 operation that removes it)
_SUBRESOURCES: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "put_bucket_ownership_controls",
        _ownership_controls,
        "delete_bucket_ownership_controls",
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "put_public_access_block",
        _public_access_block,
        "delete_public_access_block",
    ),
    "aws:s3/bucketVersioningV2:BucketVersioningV2": ("put_bucket_versioning", _versioning, ""),
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": (
        "put_bucket_encryption",
        _encryption,
        "delete_bucket_encryption",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("put_bucket_policy", _policy, "delete_bucket_policy"),
}
S3_SUBRESOURCE_TYPES = frozenset(_SUBRESOURCES)


class S3BucketSubresource(ResourceProvider):
    """Bucket configuration resources (ownership, public access block, versioning,
    encryption, policy); the id is the bucket name."""

    replace_properties = frozenset({"bucket"})

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        bucket = plain(inputs)["bucket"]
        self._apply("creating", inputs)
        return bucket, {**inputs, "id": bucket}

    def update(
        self, old: ResourceState, inputs: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        self._apply("updating", inputs)
        return {**old.outputs, **inputs, "id": old.id}

    def delete(self, old: ResourceState) -> None:
        s3 = self.context.client("s3")
        _, _, remove = _SUBRESOURCES[self.type]
        action = f"deleting {self._label()} ({old.id})"
        if remove:
            call_aws(action, getattr(s3, remove), ignore_codes=("NoSuchBucket",), Bucket=old.id)
        else:
            # Versioning cannot be removed from a bucket, only suspended.
            call_aws(
                action,
                s3.put_bucket_versioning,
                Bucket=old.id,
                VersioningConfiguration={"Status": "Suspended"},
            )

    def _apply(self, verb: str, inputs: dict[str, Any]) -> None:
        values = plain(inputs)
        put, build, _ = _SUBRESOURCES[self.type]
        s3 = self.context.client("s3")
        call_aws(
            f"{verb} {self._label()} ({values['bucket']})",
            getattr(s3, put),
            Bucket=values["bucket"],
            **build(values),
        )

    def _label(self) -> str:
        return f"S3 {self.type.rsplit(':', 1)[-1]}"
