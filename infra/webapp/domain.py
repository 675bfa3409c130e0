"""Custom domains in front of the EB environment: ACM certificate, CloudFront, Route 53."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .settings import DomainSettings

# CloudFront accepts only ACM certificates issued in us-east-1.
CERTIFICATE_REGION = "us-east-1"
# AWS managed CloudFront policies, by id. CachingDisabled (TTL 0, empty cache key) keeps
# the dynamic app's responses out of the cache. With it, AllViewer is needed to forward
# every header, cookie and query string, because a cache policy forwards only its key.
CACHING_DISABLED_POLICY_ID = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ORIGIN_ID = "eb-environment"


@dataclass
class CustomDomainArgs:
    """Inputs of CustomDomain."""

    settings: DomainSettings
    # The EB environment's CNAME, which CloudFront uses as its origin.
    origin_domain_name: pulumi.Input[str]
    # Region of the stack's default AWS provider, or None when it is not configured.
    stack_region: str | None
    tags: dict[str, str]


class CustomDomain(pulumi.ComponentResource):
    """CloudFront distribution that serves the EB environment on the configured domains.

    The first domain is the certificate's domain name and the others its subject
    alternative names. ACM validates them through DNS records in the hosted zone, and an
    alias A and AAAA record per domain points at the distribution.
    """

    certificate: aws.acm.Certificate
    validation_records: list[aws.route53.Record]
    certificate_validation: aws.acm.CertificateValidation
    distribution: aws.cloudfront.Distribution
    alias_records: list[aws.route53.Record]
    domain_urls: list[str]

    def __init__(
        self,
        name: str,
        args: CustomDomainArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:domain:CustomDomain", name, None, opts)
        domains = list(args.settings.domains)
        child = pulumi.ResourceOptions(parent=self)
        certificate_opts = pulumi.ResourceOptions(
            parent=self, provider=self._certificate_provider(name, args.stack_region)
        )
        zone_id = self._hosted_zone_id(args.settings)

        self.certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domains[0],
            subject_alternative_names=domains[1:],
            validation_method="DNS",
            tags=args.tags,
            opts=certificate_opts,
        )
        self.validation_records = [
            self._validation_record(name, domain, zone_id)
            for domain in _validation_domains(domains)
        ]
        self.certificate_validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[record.fqdn for record in self.validation_records],
            opts=certificate_opts,
        )

        self.distribution = _distribution(
            name,
            domains=domains,
            origin_domain_name=args.origin_domain_name,
            # The validation's ARN, not the certificate's, so CloudFront gets the
            # certificate only once ACM has issued it.
            certificate_arn=self.certificate_validation.certificate_arn,
            tags=args.tags,
            opts=child,
        )
        self.alias_records = [
            aws.route53.Record(
                f"{name}-{_resource_name_part(domain)}-{record_type.lower()}",
                zone_id=zone_id,
                name=domain,
                type=record_type,
                aliases=[
                    {
                        "name": self.distribution.domain_name,
                        "zone_id": self.distribution.hosted_zone_id,
                        "evaluate_target_health": False,
                    }
                ],
                opts=child,
            )
            for domain in domains
            for record_type in ("A", "AAAA")
        ]

        # A wildcard domain has no single URL, so it is left out.
        self.domain_urls = [f"https://{d}" for d in domains if not d.startswith("*.")]
        self.register_outputs(
            {
                "distributionDomainName": self.distribution.domain_name,
                "domainUrls": self.domain_urls,
            }
        )

    def _certificate_provider(self, name: str, stack_region: str | None) -> aws.Provider | None:
        """Return an AWS provider for us-east-1, or None when the stack's region is us-east-1."""
        if stack_region == CERTIFICATE_REGION:
            return None
        # NOTE: an explicit provider does not read the stack's other `aws:` config keys, such
        # as aws:profile. It takes its credentials from the environment, where CodeBuild sets them.
        return aws.Provider(
            f"{name}-{CERTIFICATE_REGION}",
            region=CERTIFICATE_REGION,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _hosted_zone_id(self, settings: DomainSettings) -> pulumi.Input[str]:
        if settings.hosted_zone_id is not None:
            return settings.hosted_zone_id
        # NOTE: the sandbox's Pulumi engine implements no provider functions, so a stack
        # that names its zone by webapp:hostedZoneName runs only against real AWS.
        zone = aws.route53.get_zone_output(
            name=settings.hosted_zone_name,
            private_zone=False,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return zone.zone_id

    def _validation_record(
        self, name: str, domain: str, zone_id: pulumi.Input[str]
    ) -> aws.route53.Record:
        option = self.certificate.domain_validation_options.apply(
            lambda options: _validation_option(options, domain)
        )
        return aws.route53.Record(
            f"{name}-validation-{_resource_name_part(domain)}",
            zone_id=zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=60,
            # ACM derives the record from the account and the domain name, so a replaced
            # or earlier certificate may have created the same record already.
            allow_overwrite=True,
            opts=pulumi.ResourceOptions(parent=self),
        )


def _distribution(
    name: str,
    *,
    domains: Sequence[str],
    origin_domain_name: pulumi.Input[str],
    certificate_arn: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudfront.Distribution:
    return aws.cloudfront.Distribution(
        f"{name}-distribution",
        comment=f"{name}: {', '.join(domains)}",
        enabled=True,
        is_ipv6_enabled=True,
        http_version="http2and3",
        aliases=list(domains),
        origins=[
            {
                "origin_id": ORIGIN_ID,
                "domain_name": origin_domain_name,
                "custom_origin_config": {
                    "http_port": 80,
                    "https_port": 443,
                    # NOTE: the hop from CloudFront to the environment's load balancer is
                    # plain HTTP, because the EB environment has no listener on 443 with a
                    # certificate for its CNAME. The app receives X-Forwarded-Proto: http.
                    "origin_protocol_policy": "http-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                },
            }
        ],
        default_cache_behavior={
            "target_origin_id": ORIGIN_ID,
            "viewer_protocol_policy": "redirect-to-https",
            "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
            "cached_methods": ["GET", "HEAD"],
            "cache_policy_id": CACHING_DISABLED_POLICY_ID,
            "origin_request_policy_id": ALL_VIEWER_ORIGIN_REQUEST_POLICY_ID,
        },
        restrictions={"geo_restriction": {"restriction_type": "none"}},
        viewer_certificate={
            "acm_certificate_arn": certificate_arn,
            "ssl_support_method": "sni-only",
            "minimum_protocol_version": "TLSv1.2_2021",
        },
        tags=tags,
        opts=opts,
    )


def _validation_domains(domains: Sequence[str]) -> list[str]:
    """Return the domains that need a validation record of their own.

    ACM gives `*.example.com` the same record as `example.com`, so a wildcard whose base
    name is also listed needs none. A second record with the same name would conflict.
    """
    listed = set(domains)
    return [d for d in domains if not (d.startswith("*.") and d.removeprefix("*.") in listed)]


def _validation_option(
    options: Sequence[aws.acm.outputs.CertificateDomainValidationOption] | None, domain: str
) -> aws.acm.outputs.CertificateDomainValidationOption:
    for option in options or []:
        if option.domain_name == domain:
            return option
    raise ValueError(f"the ACM certificate has no DNS validation option for {domain}")


def _resource_name_part(domain: str) -> str:
    """Turn a domain into part of a Pulumi resource name, with `*` spelled `wildcard`."""
    return domain.replace("*", "wildcard")
