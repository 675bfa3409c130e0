"""Lay out a state machine's graph in layers, top to bottom, without external tools.

A small layered (Sugiyama-style) layout, deterministic for a given graph:

1. Layers: a depth-first search from `StartAt` finds the edges that close a loop, and they are
   reversed. Every state then goes one layer below its lowest predecessor (longest path).
2. An edge that spans several layers gets a waypoint in each layer it crosses, so it runs
   between the boxes instead of through them.
3. Order within a layer: barycenter sweeps, keeping the order with the fewest crossings.
4. Horizontal positions: each state moves toward the mean position of its neighbours, and the
   layer's order and spacing are kept by isotonic regression (pool adjacent violators).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

# Sizes in SVG user units (pixels).
BOX_HEIGHT = 40
STATE_GAP = 28
LANE_GAP = 10
LAYER_GAP = 64
MAX_LAYER_GAP = 240
FAN_OUT_SLOPE = 0.15  # gap per unit of an edge's sideways step
MARGIN = 24
ORDER_SWEEPS = 24
POSITION_SWEEPS = 12


@dataclass
class Edge:
    """A transition the definition allows. Next and Catch to the same state share one edge."""

    source: str
    target: str
    kinds: list[str] = field(default_factory=list)  # next, choice, default, catch
    labels: list[str] = field(default_factory=list)  # short, drawn on the edge
    details: list[str] = field(default_factory=list)  # full, in the edge's tooltip


@dataclass
class StateGraph:
    """The top-level states of a definition and the edges between them."""

    start: str
    states: dict[str, dict[str, Any]]
    edges: list[Edge]


@dataclass
class Node:
    """A node of the layout: a state, or a waypoint of an edge that crosses this layer."""

    name: str | None
    layer: int
    box_width: float = 0.0
    left_half: float = 0.0
    right_half: float = 0.0
    height: float = 0.0
    center: float = 0.0
    top: float = 0.0


@dataclass
class Route:
    """The nodes an edge passes, from its upper end to its lower end."""

    edge: Edge
    nodes: list[int]
    upward: bool


@dataclass
class Layout:
    nodes: list[Node]
    index: dict[str, int]
    routes: list[Route]
    loops: list[Edge]
    layer_tops: list[float]
    layer_heights: list[float]
    width: float
    height: float


def compute_layout(graph: StateGraph, sizes: dict[str, Node], top: float) -> Layout:
    """Place every state and route every edge. `sizes` gives each state's box and room."""
    order, back_edges = _depth_first_order(graph)
    layers = _longest_path_layers(graph, order, back_edges)
    nodes = [sizes[name] for name in graph.states]
    for node in nodes:
        node.layer = layers[str(node.name)]
    index = {name: position for position, name in enumerate(graph.states)}
    routes: list[Route] = []
    loops: list[Edge] = []
    # Long downward edges into one state share their waypoints (solid and dashed apart), so
    # the many Catch edges into a common failure handler run as one line and join it.
    trunks: dict[tuple[str, bool, int], int] = {}
    for edge in graph.edges:
        if edge.source == edge.target:
            loops.append(edge)
            continue
        upward = (edge.source, edge.target) in back_edges
        upper, lower = (edge.target, edge.source) if upward else (edge.source, edge.target)
        dashed = all(kind == "catch" for kind in edge.kinds)
        chain = [index[upper]]
        for layer in range(layers[upper] + 1, layers[lower]):
            trunk = (lower, dashed, layer)
            if upward or trunk not in trunks:
                nodes.append(Node(None, layer))
                trunks.setdefault(trunk, len(nodes) - 1)
            chain.append(len(nodes) - 1 if upward else trunks[trunk])
        chain.append(index[lower])
        routes.append(Route(edge, chain, upward))

    segments = list(dict.fromkeys(pair for route in routes for pair in pairwise(route.nodes)))
    above: list[list[int]] = [[] for _ in nodes]
    below: list[list[int]] = [[] for _ in nodes]
    for upper_node, lower_node in segments:
        below[upper_node].append(lower_node)
        above[lower_node].append(upper_node)
    rows = _order_rows(nodes, above, below, len(graph.states))
    _place_horizontally(nodes, rows, above, below)
    layer_tops, layer_heights = _place_vertically(nodes, rows, segments, top)

    left = min(node.center - node.left_half for node in nodes)
    for node in nodes:
        node.center += MARGIN - left
    width = max(node.center + node.right_half for node in nodes) + MARGIN
    height = layer_tops[-1] + layer_heights[-1] + MARGIN
    return Layout(nodes, index, routes, loops, layer_tops, layer_heights, width, height)


def _depth_first_order(graph: StateGraph) -> tuple[list[str], set[tuple[str, str]]]:
    """Return the states in depth-first preorder from StartAt, and the edges that close loops."""
    successors: dict[str, list[str]] = {name: [] for name in graph.states}
    for edge in graph.edges:
        if edge.source != edge.target:
            successors[edge.source].append(edge.target)
    order: list[str] = []
    on_stack: set[str] = set()
    back_edges: set[tuple[str, str]] = set()
    roots = [graph.start, *(name for name in graph.states if name != graph.start)]
    for root in roots:
        if root in on_stack or root in order:
            continue
        order.append(root)
        on_stack.add(root)
        stack = [(root, iter(successors[root]))]
        while stack:
            name, remaining = stack[-1]
            following = next(remaining, None)
            if following is None:
                on_stack.discard(name)
                stack.pop()
            elif following in on_stack:
                back_edges.add((name, following))
            elif following not in order:
                order.append(following)
                on_stack.add(following)
                stack.append((following, iter(successors[following])))
    return order, back_edges


def _longest_path_layers(
    graph: StateGraph, order: list[str], back_edges: set[tuple[str, str]]
) -> dict[str, int]:
    """Put each state one layer below its lowest predecessor, with loops broken at back edges."""
    rank = {name: position for position, name in enumerate(order)}
    successors: dict[str, list[str]] = {name: [] for name in graph.states}
    waiting = dict.fromkeys(graph.states, 0)
    for edge in graph.edges:
        if edge.source == edge.target:
            continue
        upper, lower = edge.source, edge.target
        if (upper, lower) in back_edges:
            upper, lower = lower, upper
        successors[upper].append(lower)
        waiting[lower] += 1
    layers = dict.fromkeys(graph.states, 0)
    ready = sorted((name for name, count in waiting.items() if count == 0), key=rank.__getitem__)
    while ready:
        name = ready.pop(0)
        for following in successors[name]:
            layers[following] = max(layers[following], layers[name] + 1)
            waiting[following] -= 1
            if waiting[following] == 0:
                insort(ready, following, key=rank.__getitem__)
    return layers


def _order_rows(
    nodes: list[Node], above: list[list[int]], below: list[list[int]], state_count: int
) -> list[list[int]]:
    """Order each layer depth-first, then improve the order with barycenter sweeps."""
    rows: list[list[int]] = [[] for _ in range(max(node.layer for node in nodes) + 1)]
    seen: set[int] = set()
    for root in range(state_count):
        stack = [root]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            rows[nodes[current].layer].append(current)
            stack.extend(reversed(below[current]))

    best = [list(row) for row in rows]
    best_crossings = _count_crossings(rows, below)
    for sweep in range(ORDER_SWEEPS):
        downward = sweep % 2 == 0
        numbers = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for number in numbers:
            reference = rows[number - 1] if downward else rows[number + 1]
            neighbours = above if downward else below
            rows[number] = _sort_by_barycenter(rows[number], reference, neighbours)
        crossings = _count_crossings(rows, below)
        if crossings < best_crossings:
            best, best_crossings = [list(row) for row in rows], crossings
    return best


def _sort_by_barycenter(
    row: list[int], reference: list[int], neighbours: list[list[int]]
) -> list[int]:
    position = {node: place for place, node in enumerate(reference)}

    def key(item: tuple[int, int]) -> tuple[float, int]:
        place, node = item
        places = [position[other] for other in neighbours[node]]
        return (sum(places) / len(places) if places else float(place), place)

    return [node for _, node in sorted(enumerate(row), key=key)]


def _count_crossings(rows: list[list[int]], below: list[list[int]]) -> int:
    total = 0
    for upper_row, lower_row in pairwise(rows):
        lower_place = {node: place for place, node in enumerate(lower_row)}
        pairs = sorted(
            (upper_place, lower_place[other])
            for upper_place, node in enumerate(upper_row)
            for other in below[node]
        )
        ends: list[int] = []
        for _, end in pairs:
            total += len(ends) - bisect_right(ends, end)
            insort(ends, end)
    return total


def _place_horizontally(
    nodes: list[Node], rows: list[list[int]], above: list[list[int]], below: list[list[int]]
) -> None:
    """Move each node toward its neighbours' mean position, keeping order and spacing."""
    for row in rows:
        centers = _fit_in_order([0.0] * len(row), _gaps(nodes, row))
        middle = (centers[0] + centers[-1]) / 2 if centers else 0.0
        for node, center in zip(row, centers, strict=True):
            nodes[node].center = center - middle
    for sweep in range(POSITION_SWEEPS):
        downward = sweep % 2 == 0
        numbers = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for number in numbers:
            _pull_toward(nodes, rows[number], above if downward else below)
    for number in range(len(rows)):
        _pull_toward(nodes, rows[number], [a + b for a, b in zip(above, below, strict=True)])


def _pull_toward(nodes: list[Node], row: list[int], neighbours: list[list[int]]) -> None:
    desired = []
    for node in row:
        others = [nodes[other].center for other in neighbours[node]]
        desired.append(sum(others) / len(others) if others else nodes[node].center)
    for node, center in zip(row, _fit_in_order(desired, _gaps(nodes, row)), strict=True):
        nodes[node].center = center


def _gaps(nodes: list[Node], row: list[int]) -> list[float]:
    gaps = []
    for left, right in pairwise(row):
        both_states = nodes[left].name is not None and nodes[right].name is not None
        spacing = STATE_GAP if both_states else LANE_GAP
        gaps.append(nodes[left].right_half + spacing + nodes[right].left_half)
    return gaps


def _fit_in_order(desired: list[float], gaps: list[float]) -> list[float]:
    """Return the positions nearest to `desired` (least squares) with position[i + 1] at
    least gaps[i] after position[i].

    Subtracting each position's minimum offset turns this into isotonic regression, which
    pool adjacent violators solves exactly in one pass.
    """
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [sum, count] of pooled values
    for preferred, offset in zip(desired, offsets, strict=True):
        blocks.append([preferred - offset, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled: list[float] = []
    for total, count in blocks:
        pooled.extend([total / count] * int(count))
    return [value + offset for value, offset in zip(pooled, offsets, strict=True)]


def _place_vertically(
    nodes: list[Node], rows: list[list[int]], segments: list[tuple[int, int]], top: float
) -> tuple[list[float], list[float]]:
    """Stack the layers from `top` down.

    The gap below a layer grows with the widest sideways step of an edge that leaves it, so a
    wide fan-out does not run flat.
    """
    spans = [0.0] * len(rows)
    for upper, lower in segments:
        step = abs(nodes[upper].center - nodes[lower].center)
        spans[nodes[upper].layer] = max(spans[nodes[upper].layer], step)
    tops: list[float] = []
    heights: list[float] = []
    for row, span in zip(rows, spans, strict=True):
        height = max((nodes[node].height for node in row), default=BOX_HEIGHT)
        tops.append(top)
        heights.append(height)
        for node in row:
            nodes[node].top = top
        top += height + min(MAX_LAYER_GAP, max(LAYER_GAP, span * FAN_OUT_SLOPE))
    return tops, heights
