"""cdk-nag's AwsSolutions checks on the CDK app, and the helpers that acknowledge a finding.

app.py runs the checks on every synthesis, so `cdk synth` prints each unacknowledged finding
as an error or a warning annotation of its resource, and tests/infra/test_template_hygiene.py
requires none. An acknowledgement names one rule on one construct, with the reason it does
not apply there. For IAM5 (wildcards in a policy) it also names the finding it covers
(`applies_to`), so a new wildcard in the same policy is still reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aspects
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

AppliesTo = str | RegexAppliesTo


def apply_aws_solutions_checks(scope: IConstruct) -> None:
    """Run the AwsSolutions rule pack on every resource under `scope` at synthesis."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))


def finding(pattern: str) -> RegexAppliesTo:
    """Match the findings of a rule whose text matches the regular expression `pattern`.

    cdk-nag writes a finding as `Resource::<arn>` or `Action::<action>`, with each token as
    `<LogicalId.Attribute>` or `<AWS::Partition>`. An account or region that the stack's
    environment leaves open is a token too, so patterns match both forms.
    """
    return RegexAppliesTo(regex=f"/^{pattern}$/g")


def acknowledge(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: Sequence[AppliesTo] = (),
    children: bool = False,
) -> None:
    """Acknowledge `rule` on `construct` (and its children, with `children`) for `reason`."""
    suppression = NagPackSuppression(
        id=f"AwsSolutions-{rule}",
        reason=reason,
        applies_to=list(applies_to) if applies_to else None,
    )
    NagSuppressions.add_resource_suppressions(construct, [suppression], apply_to_children=children)
