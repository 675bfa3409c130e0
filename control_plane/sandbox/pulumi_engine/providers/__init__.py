"""Resource providers of the sandbox engine, chosen by Pulumi type token."""

from __future__ import annotations

from .base import ProviderContext, ResourceProvider
from .beanstalk import BeanstalkApplication, BeanstalkEnvironment
from .recorded import RecordedResource
from .s3 import S3_SUBRESOURCE_TYPES, S3Bucket, S3BucketSubresource

__all__ = ["ProviderContext", "ResourceProvider", "provider_for"]

_PROVIDERS: dict[str, type[ResourceProvider]] = {
    "aws:elasticbeanstalk/application:Application": BeanstalkApplication,
    "aws:elasticbeanstalk/environment:Environment": BeanstalkEnvironment,
    "aws:s3/bucketV2:BucketV2": S3Bucket,
    "aws:s3/bucket:Bucket": S3Bucket,
    **{type_token: S3BucketSubresource for type_token in S3_SUBRESOURCE_TYPES},
}


def provider_for(type_token: str, context: ProviderContext) -> ResourceProvider:
    """Provider for a type: one acting on the sandbox's AWS APIs, or a recording one."""
    provider_class = _PROVIDERS.get(type_token, RecordedResource)
    return provider_class(type_token, context)
