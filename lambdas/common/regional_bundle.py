"""Source bundles in the region of the environment that deploys them.

EB's CreateApplicationVersion accepts a source bundle only from a bucket in the region of the EB
endpoint; otherwise it fails with S3LocationNotInServiceRegionException. The bundle bucket is in
the control plane's region, so for an environment in another region the bundle is copied into
EB's own storage bucket there, `elasticbeanstalk-<region>-<account>`, which CreateStorageLocation
returns. The EB CLI uploads its bundles to the same bucket, under `<application>/<file>`, and
skips the upload when the object exists (aws-elastic-beanstalk-cli,
ebcli/operations/commonops.py, `create_app_version`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from .aws import client, error_code
from .errors import BundleInvalid

# Copies go under `<application>/control-plane/<key in the bundle bucket>`, apart from the
# bundles that the EB CLI uploads under `<application>/`.
COPY_PREFIX = "control-plane"
# User metadata of a copy: the ETag of the object it was copied from. A copy of an object that
# was uploaded in parts gets another ETag than its source, so the ETags alone cannot tell.
SOURCE_ETAG_METADATA = "source-etag"
# S3 object keys, and so EB's SourceBundle S3Key, are at most 1024 bytes long.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class RegionalBundle:
    """A bundle's location in a bucket of the environment's region, and how it got there."""

    uri: str
    # "in region": the bundle's own bucket is in the region; "copied": copied by this call;
    # "copy found": an earlier call copied it.
    decision: Literal["in region", "copied", "copy found"]


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def bucket_region(bucket: str) -> str:
    """Return the bucket's region, from HeadBucket.

    HeadBucket needs s3:ListBucket on the bucket, which every reader of the bundle bucket has.
    Older botocore versions lack the BucketRegion field, so the header is read as a fallback.
    """
    response = client("s3").head_bucket(Bucket=bucket)
    region = response.get("BucketRegion") or response["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-bucket-region"
    )
    if not region:
        raise RuntimeError(f"HeadBucket of bundle bucket {bucket} returned no region")
    return region


def bundle_in_region(bundle: str, region: str, application: str) -> RegionalBundle:
    """Return the bundle's location in a bucket of `region`, copying it there if needed.

    A bundle whose bucket is in `region` is used in place. Otherwise it is copied to
    `<application>/control-plane/<key>` in EB's storage bucket of `region`. The key depends only
    on the bundle, so a retried task finds its earlier copy and does not copy again.
    """
    source_bucket, source_key = split_s3_uri(bundle)
    source_region = bucket_region(source_bucket)
    if source_region == region:
        return RegionalBundle(bundle, "in region")

    key = f"{application}/{COPY_PREFIX}/{source_key}"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise BundleInvalid(
            f"bundle {bundle} cannot be copied to {region}: its key there, {key}, is longer "
            f"than S3's {MAX_KEY_BYTES} bytes; upload the bundle under a shorter key"
        )
    # NOTE: DeployVersion's role may not create buckets, so this relies on the bucket existing.
    # EB is expected to create it when it launches the region's first environment; that is
    # unconfirmed for environments created through the API.
    storage_bucket = client("elasticbeanstalk", region).create_storage_location()["S3Bucket"]
    destination = f"s3://{storage_bucket}/{key}"
    s3 = client("s3", region)
    source = client("s3", source_region).head_object(Bucket=source_bucket, Key=source_key)
    if _is_copy_of(_head_or_none(s3, storage_bucket, key), source):
        return RegionalBundle(destination, "copy found")

    # CopyObject runs in the destination's region and reads the source across regions. It
    # copies at most 5 GB, far above EB's 500 MB bundle limit. CopySourceIfMatch makes sure the
    # copy is of the object whose ETag the metadata records.
    s3.copy_object(
        Bucket=storage_bucket,
        Key=key,
        CopySource={"Bucket": source_bucket, "Key": source_key},
        CopySourceIfMatch=source["ETag"],
        MetadataDirective="REPLACE",
        ContentType=source.get("ContentType") or "application/zip",
        Metadata={SOURCE_ETAG_METADATA: source["ETag"].strip('"')},
    )
    return RegionalBundle(destination, "copied")


def _head_or_none(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """Return HeadObject's response, or None when the object does not exist.

    S3 returns 404 for a missing key only to a caller with s3:ListBucket on the bucket.
    Without that permission S3 returns 403, and this raises.
    """
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if error_code(error) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _is_copy_of(existing: dict[str, Any] | None, source: dict[str, Any]) -> bool:
    if existing is None or existing["ContentLength"] != source["ContentLength"]:
        return False
    source_etag = source["ETag"].strip('"')
    recorded = (existing.get("Metadata") or {}).get(SOURCE_ETAG_METADATA)
    return recorded == source_etag or existing["ETag"].strip('"') == source_etag
