"""Unit tier: the runner's drift-check actions against the scripted fake `pulumi`.

`check-only` is the action of a scheduled drift check: it previews with refresh and reports
drift without changing the stack, its state or the backend. `check` (an environment that
remediates) also lists the drift it applied. The fake CLI and fixtures are test_runner's.
"""

from __future__ import annotations

from typing import Any

import test_runner
from test_runner import (
    ENV_URN,
    HEALTH,
    INSTANCE_TYPES,
    NO_CHANGES_EXPECTED,
    FakePulumi,
    environment_update_step,
    export_with,
    fail,
    ok,
    preview_digest,
    run,
)

# test_runner's fixtures: the fake CLI and the moto S3 bucket of the result document.
fake = test_runner.fake
aws = test_runner.aws

PREVIEW_ARGV = ["preview", "--refresh", "--diff", "--expect-no-changes", "--json", "--stack", "dev"]


def mutating_calls(fake: FakePulumi) -> list[list[str]]:
    """Return the calls that would change the stack, its state or the backend."""
    changing = {"up", "refresh", "destroy", "import", "cancel"}
    calls = [
        argv for argv in (call["argv"] for call in fake.calls) if argv[:1] and argv[0] in changing
    ]
    calls += [argv for argv in fake.argvs("state")]
    calls += [argv for argv in fake.argvs("stack") if "--create" in argv or "rm" in argv]
    return calls


def test_check_only_without_drift_succeeds(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    assert code == 0
    assert result["error"] is None
    assert result["action"] == "check-only"
    assert result["drift"] == []
    assert result["changes"] is False
    assert result["summary"] == {"same": 23}
    assert fake.argvs("preview") == [PREVIEW_ARGV]
    assert mutating_calls(fake) == []


def test_check_only_reports_drift_and_changes_nothing(fake: FakePulumi, aws: Any) -> None:
    # GIVEN a preview that exits 7 (changes proposed) with the health path changed
    step = environment_update_step({HEALTH: "/health"}, {HEALTH: "/status"})
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    # THEN the build succeeds, lists the drift and runs nothing that changes the stack
    assert code == 0
    assert result["error"] is None
    assert result["drift"] == [f"update {ENV_URN} (diff: settings)"]
    assert result["changes"] is False
    assert result["summary"] == {"same": 22, "update": 1}
    assert mutating_calls(fake) == []


def test_check_only_ignores_eb_rewrites(fake: FakePulumi, aws: Any) -> None:
    # EB stores the instance types with a space after the comma; the program has none.
    step = environment_update_step(
        {INSTANCE_TYPES: "t3.small, t3.micro"}, {INSTANCE_TYPES: "t3.small,t3.micro"}
    )
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    assert code == 0
    assert result["drift"] == []
    assert len(result["ignoredDiffs"]) == 1


def test_check_only_exit_7_without_steps_is_drift(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest()))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    assert code == 0
    assert result["drift"] == ["exit code 7 (changes proposed) with no changed step in the JSON"]
    assert mutating_calls(fake) == []


def test_check_only_preview_error_is_preview_failed(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail("error: failed to load plugin aws", 1))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert "failed to load plugin aws" in result["error"]["message"]
    assert mutating_calls(fake) == []


def test_check_only_reports_pending_operations(fake: FakePulumi, aws: Any) -> None:
    # GIVEN a state with a pending create left by a killed `up`
    pending = [{"type": "creating", "resource": {"urn": ENV_URN}}]
    fake.respond("stack export", export_with(ENV_URN, pending=pending))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    # THEN it is reported as drift and left for a deployment to repair
    assert code == 0
    assert result["drift"] == [f"pending creating of {ENV_URN} left by an interrupted update"]
    assert result["repairs"] == []
    assert fake.argvs("refresh") == []
    assert fake.argvs("preview") == [PREVIEW_ARGV]


def test_check_only_never_creates_the_stack(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack ls", ok("[]"))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check-only")

    assert code == 1
    assert result["error"]["name"] == "StackNotSelected"
    assert "does not create it" in result["error"]["message"]
    assert fake.argvs("preview") == []
    assert mutating_calls(fake) == []


def test_check_lists_the_drift_it_applied(fake: FakePulumi, aws: Any) -> None:
    step = environment_update_step({HEALTH: "/health"}, {HEALTH: "/status"})
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["drift"] == [f"update {ENV_URN} (diff: settings)"]
    assert result["changes"] is True
    assert fake.argvs("up") == [["up", "--yes", "--skip-preview", "--refresh", "--stack", "dev"]]


def test_check_without_drift_lists_none(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["drift"] == []
    assert fake.argvs("up") == []
