"""Reading stack outputs from Pulumi checkpoints in the real backend format."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws
from lambdas.common.pulumi_state import Backend, parse_checkpoint, read_stack_state

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_outputs_come_from_the_root_stack_resource() -> None:
    state = parse_checkpoint(load("checkpoint-deployed.json"))

    assert state.outputs["ebEnvironmentName"] == "webapp-dev"
    assert state.resource_count == 2
    assert state.pending_operations == 0


def test_secret_outputs_stay_masked() -> None:
    state = parse_checkpoint(load("checkpoint-deployed.json"))

    assert state.outputs["databasePassword"] == "[secret]"
    assert "secretciphertext" not in json.dumps(state.outputs)


def test_empty_stack_has_no_outputs() -> None:
    state = parse_checkpoint(load("checkpoint-empty.json"))

    assert state.exists
    assert state.outputs == {}


def test_mid_update_checkpoint_reports_pending_operations() -> None:
    state = parse_checkpoint(load("checkpoint-mid-update.json"))

    assert state.outputs == {}
    assert state.pending_operations == 1


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("s3://state", "state", ".pulumi/stacks/webapp/dev.json"),
        ("s3://state/team-a", "state", "team-a/.pulumi/stacks/webapp/dev.json"),
    ],
)
def test_backend_url_maps_to_the_project_scoped_layout(url: str, bucket: str, key: str) -> None:
    backend = Backend.parse(url)

    assert backend.bucket == bucket
    assert backend.key("stacks", "webapp", "dev.json") == key


def test_non_s3_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        Backend.parse("file:///tmp/state")


@mock_aws
def test_read_stack_state_from_s3() -> None:
    aws.client.cache_clear()
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="state")
    s3.put_object(
        Bucket="state",
        Key=".pulumi/stacks/webapp/dev.json",
        Body=(FIXTURES / "checkpoint-deployed.json").read_bytes(),
    )

    found = read_stack_state("s3://state", "webapp", "dev", "us-east-1")
    missing = read_stack_state("s3://state", "webapp", "prod", "us-east-1")

    assert found.outputs["ebApplicationName"] == "webapp-dev"
    assert missing.exists is False
    aws.client.cache_clear()
