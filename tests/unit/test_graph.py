"""The execution graph: the synthesized state machine drawn with synthetic execution histories.

The histories have the shape Step Functions (and moto) return: `<Type>StateEntered`,
`LambdaFunctionScheduled`/`Failed`/`Succeeded`, `<Type>StateExited`, `Execution<Outcome>`.
They go through `build_report`, as `control-plane show` does. Paths follow the definition's
Next links from named states, so states added to the workflow join them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

# The moto control plane and CLI runner fixtures of the CLI tests, used here as they are.
from test_cli import finished_request, moto_target, runner  # noqa: F401

from control_plane import cli
from control_plane.cli import Target, main
from control_plane.executions import ExecutionReport, build_report
from control_plane.graph import (
    TIMES,
    describe_choice_rule,
    load_definition,
    render_graph,
    render_html,
    render_svg,
    state_machine_arn,
)
from control_plane.sandbox.template import load_resources, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
ARN = "arn:aws:states:us-east-1:111111111111:execution:Deployments:dev-r-1"
CONSOLE_URL = (
    "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
    f"#/v2/executions/details/{ARN}"
)
PLAN_NONE = {"ChoosePlan": "SkipPulumi"}
MARKUP_CAUSE = (
    "label v2 exists with another bundle <script>alert(\"x&y\")</script> 'quoted' & "
    "</text><text>injected"
)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    resources = load_resources(
        synthesize(REPO_ROOT / ".sandbox" / "cdk-cache"), "us-east-1", "1" * 12
    )
    return resources.definition


def walk(
    definition: dict[str, Any],
    start: str,
    *,
    branches: dict[str, str] | None = None,
    stop: str | None = None,
) -> list[str]:
    """Follow Next from `start`, taking `branches[choice]` (else Default) at each Choice, up to
    `stop` or a Succeed or Fail state."""
    states = definition["States"]
    path = [start]
    while path[-1] != stop and states[path[-1]]["Type"] not in {"Succeed", "Fail"}:
        state = states[path[-1]]
        path.append((branches or {}).get(path[-1]) or state.get("Next") or state["Default"])
        assert len(path) < len(states), path
    return path


def to_failure(definition: dict[str, Any], handler: str, error: str) -> list[str]:
    """Return the path from a failure handler (the target of a Catch) to the Fail state."""
    return walk(definition, handler, branches={"RouteFailure": error})


class History:
    """An execution history in the shape GetExecutionHistory returns, built state by state."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.states = definition["States"]
        self.events: list[dict[str, Any]] = []
        self.add("ExecutionStarted", input="{}")

    def add(self, kind: str, **details: Any) -> None:
        key = f"{kind[:1].lower()}{kind[1:]}EventDetails"
        if kind.endswith("StateEntered"):
            key = "stateEnteredEventDetails"
        elif kind.endswith("StateExited"):
            key = "stateExitedEventDetails"
        event: dict[str, Any] = {"id": len(self.events) + 1, "type": kind}
        if details:
            event[key] = details
        self.events.append(event)

    def state(
        self, name: str, failures: list[tuple[str, str]] | None = None, *, ends: str = "exit"
    ) -> History:
        """Enter `name`. A Task fails once per entry of `failures`, then succeeds, unless
        `ends` is "caught" (a Catch handles the last failure) or "stop" (the execution ends
        in the state)."""
        kind = self.states[name]["Type"]
        self.add(f"{kind}StateEntered", name=name, input="{}")
        if kind == "Task":
            for error, cause in failures or []:
                self.add("LambdaFunctionScheduled", resource="arn:aws:lambda:x", input="{}")
                self.add("LambdaFunctionStarted")
                self.add("LambdaFunctionFailed", error=error, cause=cause)
            if ends != "caught":
                self.add("LambdaFunctionScheduled", resource="arn:aws:lambda:x", input="{}")
                self.add("LambdaFunctionStarted")
                self.add("LambdaFunctionSucceeded", output="{}")
        if ends != "stop":
            self.add(f"{kind}StateExited", name=name, output="{}")
        return self

    def path(
        self, names: list[str], failures: dict[str, list[tuple[str, str]]] | None = None
    ) -> History:
        """Enter each state in turn; `failures` maps a Task to its failed attempts."""
        for name in names:
            final = self.states[name]["Type"] in {"Succeed", "Fail"}
            ends = "stop" if name == names[-1] and final else "exit"
            self.state(name, (failures or {}).get(name), ends=ends)
        return self

    def report(
        self, status: str, error: str | None = None, cause: str | None = None
    ) -> ExecutionReport:
        if status == "SUCCEEDED":
            self.add("ExecutionSucceeded", output="{}")
        elif status == "FAILED":
            self.add("ExecutionFailed", error=error, cause=cause)
        return build_report(RecordedExecution(status, self.events, error, cause), ARN)


class RecordedExecution:
    """Stands in for the Step Functions client: one execution and its history."""

    def __init__(
        self, status: str, events: list[dict[str, Any]], error: str | None, cause: str | None
    ) -> None:
        self.description: dict[str, Any] = {"executionArn": ARN, "status": status}
        if error:
            self.description["error"] = error
        if cause:
            self.description["cause"] = cause
        self.events = events

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return self.description

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        return {"events": self.events}


def classes(element: ET.Element) -> set[str]:
    return set((element.get("class") or "").split())


def drawn_states(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "state" in classes(g)]


def state_element(root: ET.Element, name: str) -> ET.Element:
    (found,) = [g for g in drawn_states(root) if g.get("data-state") == name]
    return found


def texts(element: ET.Element, css_class: str | None = None) -> list[str]:
    return [
        "".join(text.itertext())
        for text in element.iter(f"{SVG}text")
        if css_class is None or css_class in classes(text)
    ]


def drawn_edges(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "edge" in classes(g) and "retry" not in classes(g)]


def edge_element(root: ET.Element, source: str, target: str) -> ET.Element:
    (found,) = [
        g
        for g in drawn_edges(root)
        if (g.get("data-source"), g.get("data-target")) == (source, target)
    ]
    return found


def retry_loops(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "retry" in classes(g)]


def test_happy_path_highlights_visited_states(definition: dict[str, Any]) -> None:
    path = walk(definition, definition["StartAt"], branches=PLAN_NONE)
    report = History(definition).path(path).report("SUCCEEDED")

    root = ET.fromstring(render_svg(definition, report))

    names = [g.get("data-state") for g in drawn_states(root)]
    assert sorted(names) == sorted(definition["States"])
    assert len(names) == len(set(names))
    assert path[-1] == "Deployed"
    for name in definition["States"]:
        expected = "visited" if name in path else "not-visited"
        assert expected in classes(state_element(root, name)), name
    assert not [g for g in drawn_states(root) if "failed" in classes(g)]
    for source, target in pairwise(path):
        assert "taken" in classes(edge_element(root, source, target)), (source, target)
    assert "idle" in classes(edge_element(root, "ChoosePlan", "Provision"))
    assert 'plan = "none"' in texts(root, "edge-label")
    assert retry_loops(root) == []


def test_every_definition_edge_is_drawn_once(definition: dict[str, Any]) -> None:
    path = walk(definition, definition["StartAt"], branches=PLAN_NONE)
    report = History(definition).path(path).report("SUCCEEDED")
    expected = set()
    for name, state in definition["States"].items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule["Next"] for rule in state.get("Choices", [])]
        targets += [catcher["Next"] for catcher in state.get("Catch", [])]
        expected |= {(name, target) for target in targets if target}

    root = ET.fromstring(render_svg(definition, report))

    drawn = [(g.get("data-source"), g.get("data-target")) for g in drawn_edges(root)]
    assert sorted(drawn) == sorted(expected)


def test_failed_path_shows_escaped_cause(definition: dict[str, Any]) -> None:
    until_deploy = walk(definition, "ValidateRequest", branches=PLAN_NONE, stop="DeployVersion")
    history = History(definition).path(until_deploy[:-1])
    history.state("DeployVersion", [("VersionConflict", MARKUP_CAUSE)], ends="caught")
    history.path(to_failure(definition, "ReleaseLockAfterFailure", "VersionConflict"))
    report = history.report("FAILED", "VersionConflict", MARKUP_CAUSE)

    svg = render_svg(definition, report)

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    failed = state_element(root, "VersionConflict")
    assert "failed" in classes(failed)
    assert texts(failed, "failure-error") == ["VersionConflict"]
    (drawn_cause,) = texts(failed, "failure-cause")
    assert drawn_cause.replace(" ", "") == MARKUP_CAUSE.replace(" ", "")
    assert "caught" in classes(state_element(root, "DeployVersion"))
    caught_edge = edge_element(root, "DeployVersion", "ReleaseLockAfterFailure")
    assert {"catch", "caught"} <= classes(caught_edge)
    assert "caught VersionConflict" in texts(root, "edge-label")
    deploy_next = definition["States"]["DeployVersion"]["Next"]
    assert "idle" in classes(edge_element(root, "DeployVersion", deploy_next))


def test_retried_state_shows_count_on_loop(definition: dict[str, Any]) -> None:
    throttled = ("Lambda.TooManyRequestsException", "Rate exceeded")
    path = walk(definition, definition["StartAt"], branches=PLAN_NONE)
    history = History(definition).path(path, {"Preflight": [throttled] * 3})
    report = history.report("SUCCEEDED")

    root = ET.fromstring(render_svg(definition, report))

    retried = state_element(root, "Preflight")
    assert {"visited", "retried"} <= classes(retried)
    assert f"Task · retried 3{TIMES}" in texts(retried)
    (loop,) = retry_loops(root)
    assert loop.get("data-source") == "Preflight"
    assert texts(loop) == ["3 retries"]
    assert "retried" not in classes(state_element(root, "ValidateRequest"))


def test_loop_back_counts_each_transition(definition: dict[str, Any]) -> None:
    waiting = {"ChoosePlan": "WaitForTransition"}
    first = walk(definition, "ValidateRequest", branches=waiting, stop="WaitForTransition")
    inspect_again = definition["States"]["WaitForTransition"]["Next"]
    path = first + walk(definition, inspect_again, branches=PLAN_NONE)
    report = History(definition).path(path).report("SUCCEEDED")

    root = ET.fromstring(render_svg(definition, report))

    back = edge_element(root, "WaitForTransition", inspect_again)
    assert {"taken", "loop"} <= classes(back)
    before_choice = path[path.index("ChoosePlan") - 1]
    assert "taken" in classes(edge_element(root, before_choice, "ChoosePlan"))
    assert f"{TIMES}2" in texts(root, "edge-label")
    assert f"Choice · entered 2{TIMES}" in texts(state_element(root, "ChoosePlan"))


def test_caught_error_highlights_catch_edge(definition: dict[str, Any]) -> None:
    missing = ("OutputsNotAvailable", "stack webapp/dev outputs not readable yet")
    provision = {"ChoosePlan": "Provision"}
    until = walk(definition, "ValidateRequest", branches=provision, stop="ResolveOutputs")
    history = History(definition).path(until[:-1])
    history.state("ResolveOutputs", [missing] * 6, ends="caught")
    history.path(walk(definition, "FallbackOutputs"))
    report = history.report("SUCCEEDED")

    root = ET.fromstring(render_svg(definition, report))

    caught = edge_element(root, "ResolveOutputs", "FallbackOutputs")
    assert {"catch", "caught"} <= classes(caught)
    resolve_next = definition["States"]["ResolveOutputs"]["Next"]
    assert "idle" in classes(edge_element(root, "ResolveOutputs", resolve_next))
    assert "caught OutputsNotAvailable" in texts(root, "edge-label")
    assert {"caught", "visited", "retried"} <= classes(state_element(root, "ResolveOutputs"))
    (loop,) = retry_loops(root)
    assert texts(loop) == ["5 retries"]


def test_control_characters_in_cause_stay_valid_xml(definition: dict[str, Any]) -> None:
    cause = "build log: \x1b[31mError\x1b[0m \x00 end \ud800"
    history = History(definition)
    history.state("ValidateRequest", [("InvalidRequest", cause)], ends="caught")
    history.path(to_failure(definition, "RecordFailure", "InvalidRequest"))
    report = history.report("FAILED", "InvalidRequest", cause)

    svg = render_svg(definition, report)
    page = render_html(definition, report)

    root = ET.fromstring(svg)
    ET.fromstring(page)
    (drawn_cause,) = texts(state_element(root, "InvalidRequest"), "failure-cause")
    assert "\\x1b[31mError" in drawn_cause
    assert "\\x00" in drawn_cause
    assert svg.encode("utf-8")


def test_running_execution_marks_current_state(definition: dict[str, Any]) -> None:
    history = History(definition).path(walk(definition, "ValidateRequest", stop="AcquireLock"))
    history.state("Preflight", ends="stop")
    report = history.report("RUNNING")

    root = ET.fromstring(render_svg(definition, report))

    assert "running" in classes(state_element(root, "Preflight"))
    assert "visited" in classes(state_element(root, "AcquireLock"))


def test_unknown_state_in_history_is_noted(definition: dict[str, Any]) -> None:
    history = History(definition).path(["ValidateRequest", "AcquireLock"])
    history.add("PassStateEntered", name="Renamed<State>", input="{}")
    report = history.report("RUNNING")

    root = ET.fromstring(render_svg(definition, report))

    assert "not in this definition: Renamed<State>" in " ".join(texts(root))
    assert len(drawn_states(root)) == len(definition["States"])


def outline_box(group: ET.Element) -> tuple[float, float, float, float]:
    outline = next(child for child in group if child.tag in {f"{SVG}rect", f"{SVG}polygon"})
    if outline.tag == f"{SVG}rect":
        x, y = float(outline.get("x", 0)), float(outline.get("y", 0))
        return x, y, x + float(outline.get("width", 0)), y + float(outline.get("height", 0))
    points = [pair.split(",") for pair in str(outline.get("points")).split()]
    xs, ys = [float(x) for x, _ in points], [float(y) for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def test_state_boxes_do_not_overlap(definition: dict[str, Any]) -> None:
    path = walk(definition, definition["StartAt"], branches=PLAN_NONE)
    report = History(definition).path(path).report("SUCCEEDED")

    root = ET.fromstring(render_svg(definition, report))

    boxes = [outline_box(group) for group in drawn_states(root)]
    overlapping = [
        (first, second)
        for index, first in enumerate(boxes)
        for second in boxes[index + 1 :]
        if first[0] < second[2] and second[0] < first[2]
        if first[1] < second[3] and second[1] < first[3]
    ]
    assert overlapping == []


def test_rendering_is_deterministic(definition: dict[str, Any], tmp_path: Path) -> None:
    until = walk(definition, "ValidateRequest", branches=PLAN_NONE, stop="ResolveOutputs")
    history = History(definition).path(until[:-1])
    history.state("ResolveOutputs", [("OutputsNotAvailable", "not yet")] * 6, ends="caught")
    history.path(walk(definition, "FallbackOutputs"))
    report = history.report("SUCCEEDED")
    (tmp_path / "definition.json").write_text(json.dumps(definition))
    (tmp_path / "report.json").write_text(json.dumps(dataclasses.asdict(report)))
    script = (
        "import json, sys\n"
        "from control_plane.executions import ExecutionReport\n"
        "from control_plane.graph import render_html\n"
        f"definition = json.load(open({str(tmp_path / 'definition.json')!r}))\n"
        f"report = ExecutionReport(**json.load(open({str(tmp_path / 'report.json')!r})))\n"
        f"sys.stdout.buffer.write(render_html(definition, report, {CONSOLE_URL!r}).encode())\n"
    )

    first = render_html(definition, report, CONSOLE_URL).encode()
    second = render_html(definition, report, CONSOLE_URL).encode()
    other_processes = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            check=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]

    assert first == second
    assert other_processes == [first, first]


def test_html_page_facts_and_legend(definition: dict[str, Any]) -> None:
    cause = "held by r-0 & <queued>"
    history = History(definition).path(["ValidateRequest"])
    history.state("AcquireLock", [("EnvironmentLocked", cause)], ends="caught")
    history.path(to_failure(definition, "RecordFailure", "EnvironmentLocked"))
    report = history.report("FAILED", "EnvironmentLocked", cause)

    page = ET.fromstring(render_html(definition, report, CONSOLE_URL))
    sandbox_page = ET.fromstring(render_html(definition, report, None))

    (link,) = list(page.iter("a"))
    assert link.get("href") == CONSOLE_URL
    assert list(sandbox_page.iter("a")) == []
    facts = {}
    for row in page.iter("tr"):
        header, value = list(row)
        facts["".join(header.itertext())] = "".join(value.itertext())
    assert facts["ARN"] == ARN
    assert facts["Status"] == "FAILED"
    assert facts["Error"] == "EnvironmentLocked"
    assert facts["Cause"] == cause
    (legend,) = [element for element in page.iter("ul") if element.get("class") == "legend"]
    assert len(list(legend)) >= 10
    (graph,) = [svg for svg in page.iter(f"{SVG}svg") if "execution-graph" in classes(svg)]
    assert "failed" in classes(state_element(graph, "EnvironmentLocked"))


def test_graph_suffix_must_be_svg_or_html(definition: dict[str, Any]) -> None:
    report = History(definition).path(["ValidateRequest"]).report("RUNNING")

    assert render_graph(".SVG", definition, report).startswith("<?xml")
    with pytest.raises(ValueError, match=r"use \.svg or \.html"):
        render_graph(".png", definition, report)


@pytest.mark.parametrize(
    ("rule", "full", "short"),
    [
        (
            {"Variable": "$.inspection.plan", "StringEquals": "provision"},
            '$.inspection.plan = "provision"',
            'plan = "provision"',
        ),
        (
            {"Variable": "$.lock.superseded", "IsPresent": True},
            "$.lock.superseded present",
            "superseded present",
        ),
        (
            {
                "And": [
                    {"Variable": "$.a", "IsNull": False},
                    {"Not": {"Variable": "$.b[0]", "NumericLessThan": 3}},
                ]
            },
            "$.a is not null and not ($.b[0] < 3)",
            "a is not null and not (b < 3)",
        ),
        (
            {"Variable": "$.x", "TimestampGreaterThanEqualsPath": "$.limits.deadline"},
            "$.x >= $.limits.deadline",
            "x >= deadline",
        ),
        ({"Condition": "{% $states.input.ok %}"}, "{% $states.input.ok %}", None),
    ],
)
def test_choice_rule_description(rule: dict[str, Any], full: str, short: str | None) -> None:
    assert describe_choice_rule(rule) == full
    assert describe_choice_rule(rule, short=True) == (short or full)


class DeniedForExecution:
    """A Step Functions client whose role may not call DescribeStateMachineForExecution."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def describe_state_machine_for_execution(self, executionArn: str) -> dict[str, Any]:
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
        raise ClientError(error, "DescribeStateMachineForExecution")

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, Any]:
        self.described.append(stateMachineArn)
        return {"definition": json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})}


def test_definition_falls_back_to_current_one() -> None:
    sfn = DeniedForExecution()

    definition, note = load_definition(sfn, ARN)

    assert definition["StartAt"] == "A"
    assert sfn.described == ["arn:aws:states:us-east-1:111111111111:stateMachine:Deployments"]
    assert note is not None
    assert "AccessDeniedException" in note
    assert "current definition" in note


def test_state_machine_arn_rejects_other_arns() -> None:
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        state_machine_arn("arn:aws:states:us-east-1:1:stateMachine:Deployments")


def test_show_writes_svg_graph(
    runner: CliRunner,  # noqa: F811
    moto_target: Target,  # noqa: F811
    tmp_path: Path,
) -> None:
    finished_request(moto_target, "r-1", "Deployed")
    output = tmp_path / "out.svg"

    result = runner.invoke(main, ["show", "dev-r-1", "--sandbox", "--graph", str(output)])

    assert result.exit_code == 0, result.output
    assert f"graph written to {output}" in result.output
    root = ET.parse(output).getroot()
    assert [g.get("data-state") for g in drawn_states(root)] == ["Done"]
    # moto's stand-in history (no interpreter) names a state its definition does not have.
    assert "not in the definition: A State" in result.output


def test_html_graph_links_real_console(
    runner: CliRunner,  # noqa: F811
    moto_target: Target,  # noqa: F811
    tmp_path: Path,
) -> None:
    arn = finished_request(moto_target, "r-1", "Deployed")
    output = tmp_path / "out.html"

    result = runner.invoke(
        main, ["show", arn, "--sandbox", "--output", "json", "--graph", str(output)]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["executionArn"] == arn
    (link,) = list(ET.parse(output).getroot().iter("a"))
    assert link.get("href") == (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{arn}"
    )


def test_sandbox_html_graph_has_no_link(
    runner: CliRunner,  # noqa: F811
    moto_target: Target,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandboxed = dataclasses.replace(moto_target, sandbox_endpoint="http://127.0.0.1:9")
    monkeypatch.setattr(cli, "_sandbox_target", lambda start: sandboxed)
    finished_request(moto_target, "r-1", "Deployed")
    output = tmp_path / "out.html"

    result = runner.invoke(main, ["show", "dev-r-1", "--sandbox", "--graph", str(output)])

    assert result.exit_code == 0, result.output
    page = ET.parse(output).getroot()
    assert list(page.iter("a")) == []
    (graph,) = [svg for svg in page.iter(f"{SVG}svg") if "execution-graph" in classes(svg)]
    assert [g.get("data-state") for g in drawn_states(graph)] == ["Done"]


def test_show_rejects_unsupported_graph_file(runner: CliRunner, tmp_path: Path) -> None:  # noqa: F811
    result = runner.invoke(
        main, ["show", "dev-r-1", "--sandbox", "--graph", str(tmp_path / "out.png")]
    )

    assert result.exit_code == 2
    assert "cannot draw a graph as .png" in result.output
    assert ".svg" in result.output
    assert ".html" in result.output
    assert not (tmp_path / "out.png").exists()


def test_show_names_unwritable_graph_path(
    runner: CliRunner,  # noqa: F811
    moto_target: Target,  # noqa: F811
    tmp_path: Path,
) -> None:
    finished_request(moto_target, "r-1", "Deployed")

    result = runner.invoke(
        main, ["show", "dev-r-1", "--sandbox", "--graph", str(tmp_path / "absent" / "out.svg")]
    )

    assert result.exit_code == 1
    assert "cannot write the graph to" in result.output
    assert "existing, writable folder" in result.output


class NoDescribePermission:
    """Wraps a Step Functions client whose role may read executions but no state machine."""

    def __init__(self, sfn: Any) -> None:
        self.sfn = sfn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("describe_state_machine"):
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
                name,
            )
        return getattr(self.sfn, name)


def test_show_names_missing_describe_permission(
    runner: CliRunner,  # noqa: F811
    moto_target: Target,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished_request(moto_target, "r-1", "Deployed")
    restricted = dataclasses.replace(moto_target, sfn=NoDescribePermission(moto_target.sfn))
    monkeypatch.setattr(cli, "_sandbox_target", lambda start: restricted)
    output = tmp_path / "out.svg"

    result = runner.invoke(main, ["show", "dev-r-1", "--sandbox", "--graph", str(output)])

    assert result.exit_code == 1
    assert "cannot read the state machine definition" in result.output
    assert "states:DescribeStateMachineForExecution" in result.output
    assert not output.exists()


def test_html_page_scrolls_to_start_state(definition: dict[str, Any]) -> None:
    path = walk(definition, definition["StartAt"], branches=PLAN_NONE)
    report = History(definition).path(path).report("SUCCEEDED")

    page = render_html(definition, report)

    ET.fromstring(page)
    assert f"const startName = {json.dumps(definition['StartAt'])};" in page
    assert "scrollIntoView" in page
