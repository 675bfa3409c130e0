"""The simulator's view of S3: which region a bucket is in, and EB's regional storage buckets.

Real EB accepts an application version's source bundle only from a bucket in its own region,
and CreateStorageLocation creates EB's bucket ``elasticbeanstalk-<region>-<account>`` in the
region of the endpoint it is called on. The sandbox serves every region from one endpoint, so
the simulator reads each bucket's region from the sandbox's S3 (moto).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# GetBucketLocation returns no LocationConstraint for us-east-1, and "EU" for buckets that
# were created in eu-west-1 under S3's legacy name for it.
_LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


class Buckets(Protocol):
    """The S3 calls the simulator makes."""

    def bucket_region(self, bucket: str) -> str | None:
        """Return the bucket's region, or None when the bucket does not exist."""
        ...

    def create_bucket(self, bucket: str, region: str) -> None:
        """Create the bucket in ``region`` unless it exists."""
        ...


def storage_bucket_name(region: str, account_id: str) -> str:
    """Return the name of EB's storage bucket, as CreateStorageLocation returns it."""
    return f"elasticbeanstalk-{region}-{account_id}"


class S3Buckets:
    """Buckets of an S3 endpoint, reached through ``client_for(region)``, a boto3 S3 client."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self._client_for(region)
        return self._clients[region]

    def bucket_region(self, bucket: str) -> str | None:
        s3 = self._client("us-east-1")
        try:
            location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        except s3.exceptions.NoSuchBucket:
            return None
        return _LEGACY_LOCATIONS.get(location, location)

    def create_bucket(self, bucket: str, region: str) -> None:
        s3 = self._client(region)
        configuration = {} if region == "us-east-1" else {"LocationConstraint": region}
        try:
            if configuration:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=configuration)
            else:
                s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
