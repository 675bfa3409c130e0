"""Scenario files are rejected before any sandbox starts, naming the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.sandbox.scenario import ScenarioError, check_unique_names, load_scenario

KNOWN = {"dev", "staging", "prod"}
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def load_text(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "scenario.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    load_scenario(path, KNOWN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps:\n  - wait_all: 5\nexpect:\n  - {step: 1}\n", "expected a mapping of arguments"),
        (
            "steps:\n  - terminate_environment: true\nexpect:\n  - {step: 1}\n",
            "expected a mapping of arguments",
        ),
        ("steps:\n  - 7\nexpect:\n  - {step: 1}\n", "steps.0: Input should be a valid dictionary"),
        (
            "steps:\n  - {deploy: {version: v1}, at_step: 1}\nexpect:\n  - {step: 1}\n",
            "at_step belongs to a fault",
        ),
        (
            "steps:\n  - deploy: {version: v1}\nfaults:\n  - {outputs_unavailable: {reads: 1},"
            " at_step: true}\nexpect:\n  - {step: 1}\n",
            "at_step: must be a step number",
        ),
        (
            "steps:\n  - deploy: {version: v1}\n  - wait_all: {}\nexpect:\n  - {step: 2}\n",
            "expectations apply to deploy steps",
        ),
        (
            "steps:\n  - wait_all: {}\n  - stop_execution: {step: 1}\n"
            "  - deploy: {version: v1}\nexpect:\n  - {step: 3}\n",
            "step 1 must be an earlier deploy step",
        ),
        (
            "steps:\n  - deploy: {version: v1, environment: qa}\nexpect:\n  - {step: 1}\n",
            "deploy.environment: 'qa' is not defined",
        ),
        (
            "steps:\n  - deploy: {version: v1}\nexpect:\n  - {plan: none}\n",
            "name the step it checks",
        ),
        (
            "steps:\n  - deploy: {version: v1}\n"
            "expect:\n  - {outcomes: {Deployed: 1}, plan: none}\n",
            "without a step only `outcomes` can be checked",
        ),
        (
            "steps:\n  - deploy: {version: v1, bundle: no-such-folder}\nexpect:\n  - {step: 1}\n",
            "deploy.bundle",
        ),
        (
            "steps:\n  - deploy: {version: v1}\n  - deploy: {version: v1}\nsteps: []\n"
            "expect:\n  - {step: 1}\n",
            "key 'steps' appears twice",
        ),
    ],
)
def test_invalid_scenario_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_text(tmp_path, "name: x\nenvironment: dev\n" + text)


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_text(tmp_path, b"name: \xff\xfe\n")


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenarios_load(path: Path) -> None:
    loaded = load_scenario(path, KNOWN)

    assert loaded.steps


def test_names_are_unique_in_the_suite() -> None:
    loaded = [load_scenario(path, KNOWN) for path in SCENARIOS]

    check_unique_names(loaded)
    with pytest.raises(ScenarioError, match="is also used by"):
        check_unique_names([*loaded, loaded[0]])


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            "throttle: {service: beanstalk, operation: DescribeEnvironments, times: 1}",
            "faults.0.throttle: .*did you mean elasticbeanstalk",
        ),
        (
            "throttle: {service: elasticbeanstalk, operation: describe_environments, times: 1}",
            "did you mean DescribeEnvironments",
        ),
        (
            "throttle: {service: elasticbeanstalk, operation: DescribeEnvironments, times: 0}",
            "times",
        ),
        ("task_crash: {state: Prefligth, times: 1}", r"faults.0.task_crash.state: .*Preflight"),
        ("task_timeout: {state: RunPulumi, times: 1}", "'RunPulumi' is not a Lambda task state"),
    ],
)
def test_invalid_call_fault_names_the_problem(tmp_path: Path, fault: str, message: str) -> None:
    text = f"steps:\n  - deploy: {{version: v1}}\nfaults:\n  - {fault}\nexpect:\n  - {{step: 1}}\n"

    with pytest.raises(ScenarioError, match=message):
        load_text(tmp_path, "name: x\nenvironment: dev\n" + text)


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (
            "  - {pending_operations: {}, at_step: 1}\n",
            "pending_operations edits the stack's Pulumi checkpoint",
        ),
        ("  - {outputs_wiped: {}, at_step: 1}\n", "outputs_wiped edits the stack's Pulumi"),
        ("  - {stack_locked: {runs: 0}}\n", "stack_locked"),
        ("  - {stale_lock: {age_seconds: -5}}\n", "stale_lock"),
        ("  - {large_preview: {kilobytes: 0}}\n", "large_preview"),
        (
            "  - {missing_secret: {key: 'db:user'}}\n",
            "does not require secret 'db:user' \\(required: db:password\\)",
        ),
        ("  - {stale_terminated_environment: {age: 1}}\n", "stale_terminated_environment"),
    ],
)
def test_invalid_stack_fault_is_rejected(tmp_path: Path, faults: str, message: str) -> None:
    steps = "steps:\n  - deploy: {version: v1}\n  - deploy: {version: v2, request_id: r-2}\n"

    with pytest.raises(ScenarioError, match=message):
        load_text(
            tmp_path,
            f"name: x\nenvironment: dev\n{steps}faults:\n{faults}expect:\n  - {{step: 2}}\n",
        )


def test_missing_secret_needs_a_required_key(tmp_path: Path) -> None:
    text = (
        "name: x\nenvironment: prod\nsteps:\n  - deploy: {version: v1}\n"
        "faults:\n  - missing_secret: {key: 'db:password'}\nexpect:\n  - {step: 1}\n"
    )

    with pytest.raises(ScenarioError, match="required: none"):
        load_text(tmp_path, text)
