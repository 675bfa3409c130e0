"""Execution names and ARNs: one name per request, within Step Functions' 80 characters."""

from __future__ import annotations

from control_plane.executions import execution_arn, execution_name

LONG_ENVIRONMENT = "e" * 31


def test_short_name_is_environment_and_request() -> None:
    assert execution_name("dev", "cli-1234") == "dev-cli-1234"


def test_long_ids_with_shared_prefix_differ() -> None:
    first = execution_name(LONG_ENVIRONMENT, "r" * 63 + "1")
    second = execution_name(LONG_ENVIRONMENT, "r" * 63 + "2")

    assert first != second
    assert len(first) == 80
    assert len(second) == 80


def test_long_name_is_stable() -> None:
    request_id = "release-" + "x" * 56

    assert execution_name(LONG_ENVIRONMENT, request_id) == execution_name(
        LONG_ENVIRONMENT, request_id
    )


def test_execution_arn_from_state_machine_arn() -> None:
    state_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:Deploy"

    assert execution_arn(state_machine, "dev-r-1") == (
        "arn:aws:states:us-east-1:123456789012:execution:Deploy:dev-r-1"
    )
