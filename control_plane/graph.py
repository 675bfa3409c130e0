"""Draw an execution's state machine as SVG, with the path the execution took highlighted.

The graph comes from the state machine's definition (Amazon States Language) and the
execution's history, summarized by `executions.build_report`. No external layout tool runs:
graph_layout.py computes a layered layout, so the same definition and history always give the
same bytes.

Only top-level states are drawn: a Parallel or Map state is one box, without its branches.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from xml.sax.saxutils import escape

from .executions import ExecutionReport
from .graph_layout import BOX_HEIGHT, MARGIN, Edge, Layout, Node, Route, StateGraph, compute_layout

GRAPH_SUFFIXES = (".svg", ".html")
TIMES = "\u00d7"  # U+00D7 MULTIPLICATION SIGN, written after a count to mean "times"
ENDED_UNSUCCESSFULLY = {"FAILED", "TIMED_OUT", "ABORTED"}
EXECUTION_END_EVENTS = {"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}

# Sizes in SVG user units (pixels). Text widths are estimates from character counts, because
# nothing here can measure a font. 0.62 of the font size per character fit this state machine's
# bold names as rsvg-convert draws them in DejaVu Sans. A much wider font can overflow a box.
CHARACTER_WIDTH = 0.62
NAME_FONT_SIZE = 12
DETAIL_FONT_SIZE = 10
LABEL_FONT_SIZE = 10
CAUSE_FONT_SIZE = 10
BOX_MIN_WIDTH = 96
BOX_PADDING = 12
CAUSE_LINE_HEIGHT = 13
CAUSE_WRAP_CHARACTERS = 60
CAUSE_MAX_LINES = 12
LABEL_MAX_CHARACTERS = 32
RETRY_LOOP_WIDTH = 24
HEADER_HEIGHT = 44

FONT_FAMILY = "Helvetica, Arial, sans-serif"
MONOSPACE_FAMILY = "Menlo, Consolas, monospace"

# (fill, stroke, text) per state status.
STATE_COLORS = {
    "visited": ("#e6f4ea", "#188038", "#0d652d"),
    "caught": ("#fef7e0", "#e37400", "#8a4600"),
    "failed": ("#fce8e6", "#c5221f", "#a50e0e"),
    "running": ("#e8f0fe", "#1967d2", "#174ea6"),
    "not-visited": ("#f8f9fa", "#bdc1c6", "#80868b"),
}
# (stroke, width) per edge status.
EDGE_COLORS = {
    "idle": ("#bdc1c6", 1.2),
    "taken": ("#188038", 2.4),
    "caught": ("#e37400", 2.4),
    "retry": ("#1967d2", 1.8),
}

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- The definition -------------------------------------------------------------------------


def parse_definition(definition: dict[str, Any]) -> StateGraph:
    """Read the top-level states and their transitions from an Amazon States Language document.

    Raises ValueError when `States` or `StartAt` is missing or invalid.
    """
    states = definition.get("States")
    start = definition.get("StartAt")
    if not isinstance(states, dict) or not isinstance(start, str):
        raise ValueError("the state machine definition has no States or StartAt")
    if start not in states:
        raise ValueError(f"the definition's StartAt names {start!r}, which is not in States")
    for name, state in states.items():
        if not isinstance(state, dict):
            raise ValueError(f"state {name!r} of the definition is not an object")
    edges: dict[tuple[str, str], Edge] = {}

    def add(source: str, target: Any, kind: str, label: str, detail: str) -> None:
        if not isinstance(target, str) or target not in states:
            return
        edge = edges.setdefault((source, target), Edge(source, target))
        edge.kinds.append(kind)
        if label:
            edge.labels.append(label)
        edge.details.append(detail)

    for name, state in states.items():
        for rule in state.get("Choices", []):
            condition = describe_choice_rule(rule)
            add(
                name,
                rule.get("Next"),
                "choice",
                _shorten(describe_choice_rule(rule, True)),
                f"when {condition}",
            )
        if "Default" in state:
            add(name, state["Default"], "default", "default", "otherwise (Default)")
        if "Next" in state:
            add(name, state["Next"], "next", "", "Next")
        for catcher in state.get("Catch", []):
            errors = ", ".join(catcher.get("ErrorEquals", []))
            add(name, catcher.get("Next"), "catch", "", f"Catch {errors}")
    return StateGraph(start=start, states=states, edges=list(edges.values()))


_COMPARISONS = {
    "Equals": "=",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}
_TYPE_TESTS = {
    "IsPresent": ("present", "absent"),
    "IsNull": ("is null", "is not null"),
    "IsString": ("is a string", "is not a string"),
    "IsNumeric": ("is a number", "is not a number"),
    "IsBoolean": ("is a boolean", "is not a boolean"),
    "IsTimestamp": ("is a timestamp", "is not a timestamp"),
}
_RULE_KEYS = {"Variable", "Next", "Comment", "Assign", "Output"}


def describe_choice_rule(rule: dict[str, Any], short: bool = False) -> str:
    """Write a Choice rule as a condition, e.g. `$.plan = "provision"`.

    `short` names a JSONPath by its last field only (`plan`), for labels on the graph.
    """
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"])
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            parts = [describe_choice_rule(part, short) for part in rule[combinator]]
            return joiner.join(
                f"({part})" if " and " in part or " or " in part else part for part in parts
            )
    if "Not" in rule:
        return f"not ({describe_choice_rule(rule['Not'], short)})"
    variable = _path_name(str(rule.get("Variable", "?")), short)
    operator = next((key for key in rule if key not in _RULE_KEYS), None)
    if operator is None:
        return variable
    value = rule[operator]
    if operator in _TYPE_TESTS:
        when_true, when_false = _TYPE_TESTS[operator]
        return f"{variable} {when_true if value else when_false}"
    for value_type in ("String", "Numeric", "Boolean", "Timestamp"):
        if not operator.startswith(value_type):
            continue
        comparison = operator[len(value_type) :]
        if comparison.endswith("Path"):
            compared = _path_name(str(value), short)
            comparison = comparison[: -len("Path")]
        else:
            compared = json.dumps(value)
        if comparison in _COMPARISONS:
            return f"{variable} {_COMPARISONS[comparison]} {compared}"
    return f"{variable} {operator} {json.dumps(value)}"


def _path_name(path: str, short: bool) -> str:
    """Return `path`, or with `short` its last field name: `$.items[0].name` gives `name`."""
    if not short or not path.startswith("$"):
        return path
    without_index = re.sub(r"(\[[^\]]*\])+$", "", path)
    return without_index.rsplit(".", 1)[-1] or path


def _shorten(text: str, limit: int = LABEL_MAX_CHARACTERS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- The execution --------------------------------------------------------------------------


@dataclass
class CaughtError:
    error: str
    cause: str


@dataclass
class ExecutionTrace:
    """Visits, retries, transitions and caught errors of one execution, by state and edge."""

    arn: str
    status: str
    error: str | None
    cause: str | None
    visits: dict[str, int]
    retries: dict[str, int]
    transitions: dict[tuple[str, str], int]
    caught: dict[tuple[str, str], list[CaughtError]]
    failed_state: str | None = None
    running_state: str | None = None
    unknown_states: list[str] = field(default_factory=list)


def trace_execution(report: ExecutionReport, states: Iterable[str]) -> ExecutionTrace:
    """Count the visits, retries and transitions in `report`, and find caught errors.

    A Task state that exits after a failed attempt, with no successful attempt after it, left
    through a Catch, because Step Functions exits a failed task only that way.
    """
    known = set(states)
    visits: dict[str, int] = {}
    for name in report.path:
        visits[name] = visits.get(name, 0) + 1
    transitions: dict[tuple[str, str], int] = {}
    for source, target in pairwise(report.path):
        transitions[(source, target)] = transitions.get((source, target), 0) + 1
    trace = ExecutionTrace(
        arn=report.arn,
        status=report.status,
        error=report.error,
        cause=report.cause,
        visits=visits,
        retries=dict(report.retries),
        transitions=transitions,
        caught=_caught_errors(report.events),
        unknown_states=[name for name in visits if name not in known],
    )
    last = report.path[-1] if report.path else None
    if last in known and report.status in ENDED_UNSUCCESSFULLY:
        trace.failed_state = last
        trace.error, trace.cause = _execution_failure(report)
    elif last in known and report.status == "RUNNING":
        trace.running_state = last
    return trace


def states_missing_from(definition: dict[str, Any], report: ExecutionReport) -> list[str]:
    """Return the states the history entered that the definition does not have."""
    states = definition.get("States")
    known = states if isinstance(states, dict) else {}
    return [name for name in dict.fromkeys(report.path) if name not in known]


def _caught_errors(events: list[dict[str, Any]]) -> dict[tuple[str, str], list[CaughtError]]:
    caught: dict[tuple[str, str], list[CaughtError]] = {}
    current: str | None = None
    failure: CaughtError | None = None
    exited_with: CaughtError | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if current is not None and exited_with is not None:
                caught.setdefault((current, name), []).append(exited_with)
            current, failure, exited_with = name, None, None
        elif kind.endswith("StateExited"):
            exited_with = failure
        elif kind.startswith("Execution"):
            continue
        elif kind.endswith(("Failed", "TimedOut")):
            details = _event_details(event)
            failure = CaughtError(
                str(details.get("error") or kind), str(details.get("cause") or "")
            )
        elif kind.endswith("Succeeded"):
            failure = None
    return caught


def _event_details(event: dict[str, Any]) -> dict[str, Any]:
    kind = str(event.get("type", ""))
    details = event.get(f"{kind[:1].lower()}{kind[1:]}EventDetails")
    return details if isinstance(details, dict) else {}


def _execution_failure(report: ExecutionReport) -> tuple[str, str]:
    """Return the error and cause the execution ended with, from DescribeExecution or history."""
    error, cause = report.error, report.cause
    for event in reversed(report.events):
        if str(event.get("type", "")) in EXECUTION_END_EVENTS:
            details = _event_details(event)
            error = error or details.get("error")
            cause = cause or details.get("cause")
            break
    fallback = {"ABORTED": "the execution was stopped", "TIMED_OUT": "the execution timed out"}
    return str(error or report.status), str(cause or fallback.get(report.status, ""))


# --- Drawing --------------------------------------------------------------------------------


def render_svg(
    definition: dict[str, Any], report: ExecutionReport, notes: Iterable[str] = ()
) -> str:
    """Draw the definition's states and edges with the execution's path highlighted.

    `notes` are extra lines for the header, such as a warning about the definition's source.
    Raises ValueError when the definition has no valid States or StartAt.
    """
    graph = parse_definition(definition)
    trace = trace_execution(report, graph.states)
    header = [f"execution {_execution_name(trace.arn)}: {trace.status}", *notes]
    if trace.unknown_states:
        header.append(
            "the history names states that are not in this definition: "
            + ", ".join(trace.unknown_states)
        )
    header_height = HEADER_HEIGHT + 16 * (len(header) - 1)
    sizes = {name: _state_size(name, state, trace) for name, state in graph.states.items()}
    layout = compute_layout(graph, sizes, header_height + MARGIN)
    width = max(layout.width, *(_text_width(line, LABEL_FONT_SIZE) + 2 * MARGIN for line in header))
    canvas = _Canvas(graph, layout, trace)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="execution-graph" '
        f'width="{_number(width)}" height="{_number(layout.height)}" '
        f'viewBox="0 0 {_number(width)} {_number(layout.height)}" '
        f'font-family="{FONT_FAMILY}">',
        f"<title>{_text(header[0])}</title>",
        _markers(),
        '<g class="header">',
    ]
    for number, line in enumerate(header):
        size = NAME_FONT_SIZE + 2 if number == 0 else LABEL_FONT_SIZE
        weight = ' font-weight="bold"' if number == 0 else ""
        parts.append(
            f'<text x="{MARGIN}" y="{MARGIN + 4 + 16 * number}" font-size="{size}"{weight} '
            f'fill="#202124">{_text(line)}</text>'
        )
    parts.append("</g>")
    parts.extend(canvas.edges())
    parts.extend(canvas.states())
    parts.extend(canvas.labels)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _execution_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _state_size(name: str, state: dict[str, Any], trace: ExecutionTrace) -> Node:
    detail = _detail_line(name, state, trace)
    box_width = max(
        BOX_MIN_WIDTH,
        _text_width(name, NAME_FONT_SIZE) + 2 * BOX_PADDING,
        _text_width(detail, DETAIL_FONT_SIZE) + 2 * BOX_PADDING,
    )
    width, height = box_width, float(BOX_HEIGHT)
    if name == trace.failed_state:
        lines = [str(trace.error), *_wrap_cause(trace.cause or "")]
        longest = max(_text_width(line, CAUSE_FONT_SIZE) for line in lines)
        width = max(width, longest + 16)
        height += 6 + len(lines) * CAUSE_LINE_HEIGHT + 10
    right = width / 2
    retries = trace.retries.get(name, 0)
    if retries:
        right = max(right, box_width / 2 + RETRY_LOOP_WIDTH + 6)
        right += _text_width(_retry_label(retries), LABEL_FONT_SIZE)
    return Node(name, 0, box_width, width / 2, right, height)


def _detail_line(name: str, state: dict[str, Any], trace: ExecutionTrace) -> str:
    parts = [str(state.get("Type", "?"))]
    visits = trace.visits.get(name, 0)
    if visits > 1:
        parts.append(f"entered {visits}{TIMES}")
    retries = trace.retries.get(name, 0)
    if retries:
        parts.append(f"retried {retries}{TIMES}")
    return " · ".join(parts)


def _retry_label(retries: int) -> str:
    return "1 retry" if retries == 1 else f"{retries} retries"


def _wrap_cause(cause: str) -> list[str]:
    lines = textwrap.wrap(
        _clean(cause), CAUSE_WRAP_CHARACTERS, break_long_words=True, break_on_hyphens=False
    )
    if len(lines) > CAUSE_MAX_LINES:
        lines = lines[:CAUSE_MAX_LINES]
        lines[-1] = lines[-1][: CAUSE_WRAP_CHARACTERS - 1] + "…"
    return lines


class _Canvas:
    """Writer of a laid-out graph's SVG elements. It keeps edge labels to draw them last."""

    def __init__(self, graph: StateGraph, layout: Layout, trace: ExecutionTrace) -> None:
        self.graph = graph
        self.layout = layout
        self.trace = trace
        self.labels: list[str] = []
        self.ids: dict[str, int] = {}
        self.bottom_ports, self.top_ports = self._ports()

    def _element_id(self, prefix: str, *names: str) -> str:
        slug = "-".join(re.sub(r"[^A-Za-z0-9_]", "_", name) for name in names)
        candidate = f"{prefix}-{slug}"
        count = self.ids.get(candidate, 0)
        self.ids[candidate] = count + 1
        return candidate if count == 0 else f"{candidate}-{count + 1}"

    def _ports(self) -> tuple[dict[int, float], dict[int, float]]:
        """Spread the edges leaving a box's bottom and entering its top over its width."""
        nodes = self.layout.nodes
        # Routes that arrive through the same shared waypoint share one port.
        leaving: dict[int, dict[tuple[float, int], list[int]]] = {}
        entering: dict[int, dict[tuple[float, int], list[int]]] = {}
        for number, route in enumerate(self.layout.routes):
            upper, after, before, lower = (route.nodes[index] for index in (0, 1, -2, -1))
            leaving.setdefault(upper, {}).setdefault((nodes[after].center, -number), [])
            leaving[upper][(nodes[after].center, -number)].append(number)
            via = before if nodes[before].name is None else -number - 1
            entering.setdefault(lower, {}).setdefault((nodes[before].center, via), [])
            entering[lower][(nodes[before].center, via)].append(number)
        bottom: dict[int, float] = {}
        top: dict[int, float] = {}
        for ports, grouped in ((bottom, leaving), (top, entering)):
            for node_number, ends in grouped.items():
                node = nodes[node_number]
                left = node.center - node.box_width / 2
                for place, end in enumerate(sorted(ends)):
                    for number in ends[end]:
                        ports[number] = left + node.box_width * (place + 1) / (len(ends) + 1)
        return bottom, top

    def edges(self) -> list[str]:
        drawn = []
        for number, route in enumerate(self.layout.routes):
            status = self._edge_status(route.edge)
            drawn.append((EDGE_RANK[status], number, self._route(number, route, status)))
        for edge in self.layout.loops:
            drawn.append((EDGE_RANK[self._edge_status(edge)], len(drawn), self._self_edge(edge)))
        for name, retries in self.trace.retries.items():
            if name in self.layout.index:
                drawn.append((EDGE_RANK["retry"], len(drawn), self._retry_loop(name, retries)))
        return ['<g class="edges">', *(element for *_, element in sorted(drawn)), "</g>"]

    def _edge_status(self, edge: Edge) -> str:
        key = (edge.source, edge.target)
        if key in self.trace.caught and "catch" in edge.kinds:
            return "caught"
        return "taken" if key in self.trace.transitions else "idle"

    def _route(self, number: int, route: Route, status: str) -> str:
        nodes, layout = self.layout.nodes, self.layout
        upper, lower = nodes[route.nodes[0]], nodes[route.nodes[-1]]
        points = [(self.bottom_ports[number], upper.top + upper.height)]
        for waypoint in route.nodes[1:-1]:
            node = nodes[waypoint]
            layer_top = layout.layer_tops[node.layer]
            points.append((node.center, layer_top))
            points.append((node.center, layer_top + layout.layer_heights[node.layer]))
        points.append((self.top_ports[number], lower.top))
        if route.upward:
            points.reverse()
        edge = route.edge
        classes = ["edge", *dict.fromkeys(edge.kinds), status]
        if route.upward:
            classes.append("loop")
        element = self._edge_element(edge, classes, status, _path_data(points))
        self._add_labels(edge, status, points)
        return element

    def _edge_element(self, edge: Edge, classes: list[str], status: str, path: str) -> str:
        color, width = EDGE_COLORS[status]
        only_catch = all(kind == "catch" for kind in edge.kinds)
        dash = ' stroke-dasharray="6 4"' if only_catch or status == "caught" else ""
        element_id = self._element_id("edge", edge.source, edge.target)
        return (
            f'<g class="{" ".join(classes)}" id="{element_id}"'
            f' data-source="{_text(edge.source)}" data-target="{_text(edge.target)}">'
            f"<title>{_text(self._edge_title(edge))}</title>"
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash}'
            f' marker-end="url(#arrow-{status})"/></g>'
        )

    def _edge_title(self, edge: Edge) -> str:
        lines = [f"{edge.source} → {edge.target}", *edge.details]
        taken = self.trace.transitions.get((edge.source, edge.target), 0)
        if taken:
            lines.append(f"taken {taken}{TIMES}")
        for caught in self.trace.caught.get((edge.source, edge.target), []):
            lines.append(f"caught {caught.error}: {_shorten(caught.cause, 500)}")
        return "\n".join(lines)

    def _add_labels(self, edge: Edge, status: str, points: list[tuple[float, float]]) -> None:
        """Label a branch's condition at its end, and what happened at its start."""
        if edge.labels:
            x, y = points[-1]
            below_target = y < points[-2][1]
            self._label(x, y + 14 if below_target else y - 7, " / ".join(edge.labels), status)
        happened = []
        caught = self.trace.caught.get((edge.source, edge.target), [])
        if caught and "catch" in edge.kinds:
            happened.append(_shorten(f"caught {caught[-1].error}"))
        taken = self.trace.transitions.get((edge.source, edge.target), 0)
        if taken > 1:
            happened.append(f"{TIMES}{taken}")
        if happened:
            x, y = points[0]
            leaving_up = y > points[1][1]
            self._label(x + 4, y - 6 if leaving_up else y + 13, " ".join(happened), status, "start")

    def _label(self, x: float, y: float, text: str, status: str, anchor: str = "middle") -> None:
        color = "#5f6368" if status == "idle" else EDGE_COLORS[status][0]
        self.labels.append(
            f'<text class="edge-label {status}" x="{_number(x)}" y="{_number(y)}" '
            f'text-anchor="{anchor}" font-size="{LABEL_FONT_SIZE}" fill="{color}" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{_text(text)}</text>'
        )

    def _self_edge(self, edge: Edge) -> str:
        """Draw a transition from a state to itself as a loop on the box's left side."""
        node = self.layout.nodes[self.layout.index[edge.source]]
        x = node.center - node.box_width / 2
        top, bottom = node.top + 10, node.top + BOX_HEIGHT - 10
        path = (
            f"M{_number(x)},{_number(top)} C{_number(x - RETRY_LOOP_WIDTH)},{_number(top - 14)} "
            f"{_number(x - RETRY_LOOP_WIDTH)},{_number(bottom + 14)} {_number(x)},{_number(bottom)}"
        )
        status = self._edge_status(edge)
        return self._edge_element(edge, ["edge", *dict.fromkeys(edge.kinds), status], status, path)

    def _retry_loop(self, name: str, retries: int) -> str:
        node = self.layout.nodes[self.layout.index[name]]
        x = node.center + node.box_width / 2
        top, bottom = node.top + 10, node.top + BOX_HEIGHT - 10
        path = (
            f"M{_number(x)},{_number(top)} C{_number(x + RETRY_LOOP_WIDTH)},{_number(top - 14)} "
            f"{_number(x + RETRY_LOOP_WIDTH)},{_number(bottom + 14)} {_number(x)},{_number(bottom)}"
        )
        color, width = EDGE_COLORS["retry"]
        label_x = x + RETRY_LOOP_WIDTH + 4
        label_y = node.top + BOX_HEIGHT / 2 + 4
        return (
            f'<g class="edge retry" id="{self._element_id("retry", name)}" '
            f'data-source="{_text(name)}" data-target="{_text(name)}">'
            f"<title>{_text(f'{name} retried {retries}{TIMES} (Retry)')}</title>"
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}" '
            f'marker-end="url(#arrow-retry)"/>'
            f'<text class="edge-label retry" x="{_number(label_x)}" y="{_number(label_y)}" '
            f'font-size="{LABEL_FONT_SIZE}" fill="{color}">{_retry_label(retries)}</text></g>'
        )

    def states(self) -> list[str]:
        drawn = ['<g class="states">']
        for node in self.layout.nodes:
            if node.name is not None:
                drawn.append(self._state(node))
        drawn.append("</g>")
        return drawn

    def _state_status(self, name: str) -> str:
        if name == self.trace.failed_state:
            return "failed"
        if name == self.trace.running_state:
            return "running"
        if not self.trace.visits.get(name):
            return "not-visited"
        if any(source == name for source, _ in self.trace.caught):
            return "caught"
        return "visited"

    def _state(self, node: Node) -> str:
        name = str(node.name)
        state = self._definition_state(name)
        kind = str(state.get("Type", "?"))
        status = self._state_status(name)
        classes = ["state", kind.lower(), status]
        if status in {"caught", "failed", "running"}:
            classes.append("visited")
        if self.trace.retries.get(name):
            classes.append("retried")
        fill, stroke, ink = STATE_COLORS[status]
        left = node.center - node.box_width / 2
        parts = [
            f'<g class="{" ".join(classes)}" id="{self._element_id("state", name)}" '
            f'data-state="{_text(name)}">',
            f"<title>{_text(self._state_title(name, kind))}</title>",
            _shape(kind, left, node.top, node.box_width, fill, stroke),
            f'<text class="state-name" x="{_number(node.center)}" y="{_number(node.top + 17)}" '
            f'text-anchor="middle" font-size="{NAME_FONT_SIZE}" font-weight="bold" '
            f'fill="{ink}">{_text(name)}</text>',
            f'<text class="state-detail" x="{_number(node.center)}" '
            f'y="{_number(node.top + 31)}" text-anchor="middle" font-size="{DETAIL_FONT_SIZE}" '
            f'fill="{ink}">{_text(_detail_line(name, state, self.trace))}</text>',
        ]
        if status == "failed":
            parts.append(self._failure(node))
        parts.append("</g>")
        return "".join(parts)

    def _definition_state(self, name: str) -> dict[str, Any]:
        return self.graph.states.get(name, {})

    def _state_title(self, name: str, kind: str) -> str:
        lines = [f"{name} ({kind})"]
        comment = self._definition_state(name).get("Comment")
        if comment:
            lines.append(str(comment))
        visits = self.trace.visits.get(name, 0)
        lines.append(f"entered {visits}{TIMES}" if visits else "not entered")
        retries = self.trace.retries.get(name, 0)
        if retries:
            lines.append(f"retried {retries}{TIMES}")
        for (source, target), errors in self.trace.caught.items():
            if source == name:
                for caught in errors:
                    lines.append(f"caught {caught.error} → {target}: {_shorten(caught.cause, 500)}")
        if name == self.trace.failed_state:
            lines.append(f"the execution ended here: {self.trace.error}: {self.trace.cause}")
        return "\n".join(lines)

    def _failure(self, node: Node) -> str:
        """Write the execution's error and its wrapped cause in a block under the failed box."""
        lines = _wrap_cause(self.trace.cause or "")
        width = node.left_half * 2
        top = node.top + BOX_HEIGHT + 6
        height = node.height - BOX_HEIGHT - 6
        left = node.center - width / 2
        _, stroke, ink = STATE_COLORS["failed"]
        spans = "".join(
            f'<tspan x="{_number(left + 8)}" dy="{CAUSE_LINE_HEIGHT}">{_text(line)}</tspan>'
            for line in lines
        )
        return (
            f'<g class="failure">'
            f'<rect x="{_number(left)}" y="{_number(top)}" width="{_number(width)}" '
            f'height="{_number(height)}" rx="4" fill="#ffffff" stroke="{stroke}"/>'
            f'<text class="failure-error" x="{_number(left + 8)}" '
            f'y="{_number(top + CAUSE_LINE_HEIGHT + 2)}" font-size="{CAUSE_FONT_SIZE}" '
            f'font-weight="bold" fill="{ink}">{_text(str(self.trace.error))}</text>'
            f'<text class="failure-cause" x="{_number(left + 8)}" '
            f'y="{_number(top + CAUSE_LINE_HEIGHT + 2)}" font-size="{CAUSE_FONT_SIZE}" '
            f'font-family="{MONOSPACE_FAMILY}" fill="{ink}">{spans}</text></g>'
        )


EDGE_RANK = {"idle": 0, "retry": 1, "taken": 2, "caught": 3}


def _shape(kind: str, left: float, top: float, width: float, fill: str, stroke: str) -> str:
    """Draw a state's outline: Choice a hexagon, Succeed and Fail a pill, Pass square corners."""
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
    if kind == "Choice":
        inset = 10
        right, middle, bottom = left + width, top + BOX_HEIGHT / 2, top + BOX_HEIGHT
        points = [
            (left, middle),
            (left + inset, top),
            (right - inset, top),
            (right, middle),
            (right - inset, bottom),
            (left + inset, bottom),
        ]
        coordinates = " ".join(f"{_number(x)},{_number(y)}" for x, y in points)
        return f'<polygon points="{coordinates}" {paint}/>'
    corner = {"Succeed": BOX_HEIGHT / 2, "Fail": BOX_HEIGHT / 2, "Pass": 0}.get(kind, 6)
    outline = (
        f'<rect x="{_number(left)}" y="{_number(top)}" width="{_number(width)}" '
        f'height="{BOX_HEIGHT}" rx="{_number(corner)}" {paint}/>'
    )
    if kind in {"Parallel", "Map"}:
        outline += (
            f'<rect x="{_number(left + 3)}" y="{_number(top + 3)}" '
            f'width="{_number(width - 6)}" height="{BOX_HEIGHT - 6}" rx="4" fill="none" '
            f'stroke="{stroke}"/>'
        )
    return outline


def _markers() -> str:
    markers = "".join(
        f'<marker id="arrow-{status}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        for status, (color, _) in EDGE_COLORS.items()
    )
    return f"<defs>{markers}</defs>"


def _path_data(points: list[tuple[float, float]]) -> str:
    """Join the points with vertical lines where x stays, and S-curves where it changes."""
    parts = [f"M{_number(points[0][0])},{_number(points[0][1])}"]
    for (x1, y1), (x2, y2) in pairwise(points):
        if abs(x1 - x2) < 0.05:
            parts.append(f"L{_number(x2)},{_number(y2)}")
        else:
            middle = (y1 + y2) / 2
            parts.append(
                f"C{_number(x1)},{_number(middle)} {_number(x2)},{_number(middle)} "
                f"{_number(x2)},{_number(y2)}"
            )
    return " ".join(parts)


def _number(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _text_width(text: str, font_size: float) -> float:
    return len(text) * font_size * CHARACTER_WIDTH


def _clean(text: str) -> str:
    """Replace the characters XML 1.0 cannot hold (control characters, lone surrogates)."""
    return _XML_INVALID.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _text(text: str) -> str:
    """Escape text for XML element content and double- or single-quoted attributes."""
    return escape(_clean(text), {'"': "&quot;", "'": "&#39;"})


# --- The page -------------------------------------------------------------------------------

PAGE_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #202124; }
header { padding: 16px 24px; border-bottom: 1px solid #dadce0; }
h1 { font-size: 18px; margin: 0 0 12px; }
table.facts th { text-align: left; padding: 2px 16px 2px 0; vertical-align: top; }
table.facts td { padding: 2px 0; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 100em; }
.status-SUCCEEDED { color: #188038; } .status-FAILED, .status-TIMED_OUT { color: #c5221f; }
ul.legend { list-style: none; padding: 0; margin: 12px 0 0; display: flex; flex-wrap: wrap; }
ul.legend li { display: flex; align-items: center; margin: 0 20px 6px 0; font-size: 13px; }
ul.legend svg { margin-right: 6px; }
ul.notes { color: #a50e0e; }
main { overflow: auto; padding: 8px; }
"""

# (sample, meaning). Each sample is drawn in a 44 by 20 box.
_LEGEND = [
    (("rect", "visited"), "state the execution entered"),
    (("rect", "not-visited"), "state not entered"),
    (("rect", "failed"), "state the execution failed in, with the error and cause"),
    (("rect", "caught"), "state whose error a Catch handled"),
    (("rect", "running"), "state the execution is in"),
    (("rect", "not-visited"), "Task (rounded corners)"),
    (("hexagon", "not-visited"), "Choice"),
    (("square", "not-visited"), "Pass"),
    (("pill", "not-visited"), "Succeed or Fail"),
    (("line", "idle"), "Next, Choice or Default transition"),
    (("dashed", "idle"), "Catch transition"),
    (("line", "taken"), f"transition taken ({TIMES}N: taken N times)"),
    (("dashed", "caught"), "Catch taken, labelled with the error"),
    (("loop", "retry"), "Retry, labelled with the retry count"),
]


def render_html(
    definition: dict[str, Any],
    report: ExecutionReport,
    console_url: str | None = None,
    notes: Iterable[str] = (),
) -> str:
    """Write a page with the execution's facts, a legend and the graph of `render_svg`.

    `console_url` links the execution's graph in the AWS console, and the sandbox has none.
    The page is well-formed XML, so XML tools can read it as well as browsers.
    """
    notes = list(notes)
    svg = render_svg(definition, report, notes)
    name = _execution_name(report.arn)
    facts = [
        ("ARN", f"<code>{_text(report.arn)}</code>"),
        ("Status", f'<span class="status-{_text(report.status)}">{_text(report.status)}</span>'),
    ]
    if report.error:
        facts.append(("Error", _text(report.error)))
    if report.cause:
        facts.append(("Cause", f'<pre class="cause">{_text(report.cause)}</pre>'))
    if console_url:
        link = f'<a href="{_text(console_url)}">graph in the AWS Step Functions console</a>'
        facts.append(("Console", link))
    rows = "\n".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in facts)
    note_items = "".join(f"<li>{_text(note)}</li>" for note in notes)
    legend = "\n".join(
        f"<li>{_legend_sample(*sample)}{_text(meaning)}</li>" for sample, meaning in _LEGEND
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8"/>\n'
        f"<title>Execution {_text(name)}: {_text(report.status)}</title>\n"
        f"<style>{PAGE_STYLE}</style>\n</head>\n<body>\n<header>\n"
        f"<h1>Execution {_text(name)}</h1>\n"
        f'<table class="facts">\n{rows}\n</table>\n'
        + (f'<ul class="notes">{note_items}</ul>\n' if note_items else "")
        + f'<ul class="legend">\n{legend}\n</ul>\n</header>\n<main>\n{svg}</main>\n'
        + _scroll_to_start_script(str(definition.get("StartAt", "")))
        + "</body>\n</html>\n"
    )


def _scroll_to_start_script(start: str) -> str:
    """Return a script that scrolls a wide graph to its start state when the page opens.

    The script contains no `<` or `&`, so the page stays well-formed XML.
    """
    name = json.dumps(start).replace("<", "\\u003c").replace("&", "\\u0026")
    return (
        "<script>\n"
        f"const startName = {name};\n"
        "const startBox = Array.from(document.querySelectorAll('main g[data-state]'))"
        ".find(group => group.dataset.state === startName);\n"
        "if (startBox) startBox.scrollIntoView({block: 'nearest', inline: 'center'});\n"
        "</script>\n"
    )


def _legend_sample(shape: str, status: str) -> str:
    if shape in {"rect", "hexagon", "square", "pill"}:
        fill, stroke, _ = STATE_COLORS[status]
        kind = {"rect": "Task", "hexagon": "Choice", "square": "Pass", "pill": "Succeed"}[shape]
        drawn = _shape(kind, 2, 0, 40, fill, stroke)
        content = f'<g transform="translate(0,2) scale(1,0.4)">{drawn}</g>'
    else:
        color, width = EDGE_COLORS[status]
        dash = ' stroke-dasharray="6 4"' if shape == "dashed" else ""
        path = "M14,4 C40,-4 40,24 14,16" if shape == "loop" else "M2,10 L40,10"
        content = f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>'
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="44" height="20" '
        f'viewBox="0 0 44 20">{content}</svg>'
    )


def render_graph(
    suffix: str,
    definition: dict[str, Any],
    report: ExecutionReport,
    console_url: str | None = None,
    notes: Iterable[str] = (),
) -> str:
    """Render the graph as a file of `suffix`: `.svg` or `.html`.

    Raises ValueError for any other suffix, or a definition without States or StartAt.
    """
    suffix = suffix.lower()
    if suffix == ".svg":
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + render_svg(definition, report, notes)
    if suffix == ".html":
        return render_html(definition, report, console_url, notes)
    raise ValueError(f"unsupported graph file type {suffix!r}; use .svg or .html")


def load_definition(sfn: Any, execution_arn: str) -> tuple[dict[str, Any], str | None]:
    """Return the definition the execution ran, and a note when only another one was readable.

    DescribeStateMachineForExecution returns the definition (and version) the execution
    started with. Where it fails (a role without `states:DescribeStateMachineForExecution`),
    DescribeStateMachine gives the state machine's current definition, which may be newer.
    """
    from botocore.exceptions import ClientError

    note = None
    try:
        described = sfn.describe_state_machine_for_execution(executionArn=execution_arn)
    except ClientError as problem:
        code = problem.response.get("Error", {}).get("Code", "")
        if code in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise
        described = sfn.describe_state_machine(stateMachineArn=state_machine_arn(execution_arn))
        note = (
            f"DescribeStateMachineForExecution failed ({code}), so this graph shows the state "
            "machine's current definition, which may differ from the one the execution ran"
        )
    return json.loads(described["definition"]), note


def state_machine_arn(execution_arn: str) -> str:
    """Return the ARN of the state machine an execution ARN belongs to."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        raise ValueError(f"{execution_arn!r} is not a Step Functions execution ARN")
    return ":".join([*parts[:5], "stateMachine", parts[6]])
