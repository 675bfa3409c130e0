"""The dashboard's pages: HTML with every value escaped, and the script that refreshes them.

The server (dashboard.py) sends each page once. The inline script then polls the page's JSON
endpoint and fills the same tables and facts from it. Both use the column lists below.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

# (key in the JSON row, column title, key of the row's link or None)
ENVIRONMENT_COLUMNS = [
    ("name", "Environment", None),
    ("region", "Region", None),
    ("version", "Version", None),
    ("status", "EB status", None),
    ("health", "Health", None),
    ("lockHolder", "Lock holder", None),
    ("runningExecution", "Running execution", "runningExecutionUrl"),
]
DEPLOYMENT_COLUMNS = [
    ("requestId", "Request", "executionUrl"),
    ("environment", "Environment", None),
    ("version", "Version", None),
    ("outcome", "Outcome", None),
    ("error", "Error", None),
    ("started", "Started", None),
    ("duration", "Duration", None),
    ("cause", "Cause", None),
]
EXECUTION_FACTS = [
    ("executionArn", "ARN"),
    ("status", "Status"),
    ("currentState", "Current state"),
    ("transitions", "Transitions"),
    ("error", "Error"),
    ("cause", "Cause"),
]

PAGE_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #202124; }
header { padding: 12px 24px; border-bottom: 1px solid #dadce0; }
main { padding: 8px 24px 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
p { margin: 4px 0; }
.muted { color: #5f6368; font-size: 13px; }
.problem { color: #c5221f; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 4px 16px 4px 0; }
table.rows th, table.rows td { border-bottom: 1px solid #e8eaed; }
td.cause { max-width: 40em; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 100em; }
[data-value="Green"], [data-value="Deployed"], [data-value="SUCCEEDED"] { color: #188038; }
[data-value="Yellow"], [data-value="RUNNING"] { color: #b06000; }
[data-value="Red"], [data-value="FAILED"], [data-value="TIMED_OUT"] { color: #c5221f; }
#graph { padding: 8px 0; }
"""

# Fills the tables, facts and graph from the page's JSON endpoint every `data-interval`
# seconds. Values go into the page through textContent only. The graph is markup that
# graph.py writes with every value escaped.
PAGE_SCRIPT = """
"use strict";
const page = document.body.dataset;
const pause = Number(page.interval) * 1000;

function show(cell, value, link) {
  const text = value === null || value === undefined || value === "" ? "-" : String(value);
  cell.dataset.value = text;
  if (link) {
    const anchor = document.createElement("a");
    anchor.href = link;
    anchor.textContent = text;
    cell.replaceChildren(anchor);
  } else {
    cell.textContent = text;
  }
}

function fillTable(table, rows) {
  const columns = Array.from(table.tHead.rows[0].cells, (cell) => cell.dataset);
  const body = table.tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = columns.length;
    cell.textContent = table.dataset.empty;
  }
  for (const row of rows) {
    const line = body.insertRow();
    line.dataset.row = row[table.dataset.rowKey];
    for (const column of columns) {
      const cell = line.insertCell();
      cell.className = column.key;
      show(cell, row[column.key], column.link ? row[column.link] : null);
    }
  }
}

function fillProblems(problems) {
  const list = document.getElementById("problems");
  list.replaceChildren();
  for (const problem of problems) {
    const item = document.createElement("li");
    item.textContent = problem;
    list.append(item);
  }
}

function fill(data) {
  if (page.page === "overview") {
    fillTable(document.getElementById("environments"), data.environments);
    fillTable(document.getElementById("deployments"), data.deployments);
    fillProblems(data.problems);
    return true;
  }
  for (const cell of document.querySelectorAll("[data-field]")) {
    show(cell, data[cell.dataset.field]);
  }
  document.getElementById("graph").innerHTML = data.graphSvg;
  return data.running;
}

async function refresh() {
  const notice = document.getElementById("refresh-error");
  let again = true;
  try {
    const response = await fetch(page.api, { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) {
      throw new Error(data.error || response.statusText);
    }
    again = fill(data);
    document.getElementById("refreshed").textContent = "updated " + data.generatedAt;
    notice.hidden = true;
  } catch (error) {
    notice.textContent = "refresh failed: " + error.message;
    notice.hidden = false;
  }
  if (again) {
    setTimeout(refresh, pause);
  }
}

if (page.live === "true") {
  setTimeout(refresh, pause);
}
"""


def _source_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


# Only the page's own inline script and style run, and fetches go to this server only. So a
# value that reached the page unescaped could still neither run a script nor send data away.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_source_hash(PAGE_SCRIPT)}; "
    f"style-src {_source_hash(PAGE_STYLE)}; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def utc_text(epoch_seconds: float | None) -> str | None:
    """Format epoch seconds as UTC date and time, or None for a missing time."""
    if not epoch_seconds:
        return None
    return datetime.fromtimestamp(float(epoch_seconds), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def execution_path(name: str) -> str:
    """Return the dashboard's URL path of the execution called `name`."""
    return f"/executions/{quote(name, safe='')}"


def _html(value: Any) -> str:
    """Escape a value for HTML text and quoted attributes, showing a missing value as a dash."""
    text = "-" if value is None or value == "" else str(value)
    return escape(text, quote=True)


def _cell(key: str, value: Any, link: Any) -> str:
    text = _html(value)
    content = f'<a href="{_html(link)}">{text}</a>' if link else text
    return f'<td class="{key}" data-value="{text}">{content}</td>'


def _table(
    table_id: str,
    columns: list[tuple[str, str, str | None]],
    rows: list[dict[str, Any]],
    row_key: str,
    empty: str,
) -> str:
    head = "".join(
        f'<th data-key="{key}"' + (f' data-link="{link}"' if link else "") + f">{title}</th>"
        for key, title, link in columns
    )
    lines = [
        f'<tr data-row="{_html(row.get(row_key))}">'
        + "".join(_cell(key, row.get(key), link and row.get(link)) for key, _, link in columns)
        + "</tr>"
        for row in rows
    ]
    if not lines:
        lines = [f'<tr><td colspan="{len(columns)}">{_html(empty)}</td></tr>']
    return (
        f'<table class="rows" id="{table_id}" data-row-key="{row_key}" '
        f'data-empty="{_html(empty)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def _page(
    title: str, attributes: dict[str, str], header: str, main: str, generated: str | None
) -> str:
    data = "".join(f' data-{name}="{_html(value)}"' for name, value in attributes.items())
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_html(title)}</title>'
        f"<style>{PAGE_STYLE}</style></head>\n"
        f"<body{data}>\n<header>{header}"
        f'<p class="muted" id="refreshed">updated {_html(generated)}</p>'
        '<p class="problem" id="refresh-error" hidden></p>'
        f"</header>\n<main>{main}</main>\n<script>{PAGE_SCRIPT}</script>\n</body></html>\n"
    )


def overview_page(overview: dict[str, Any], interval_seconds: float) -> str:
    """Write the index page: environments, problems and recent deployments."""
    problems = "".join(f"<li>{_html(problem)}</li>" for problem in overview["problems"])
    header = (
        "<h1>Control plane</h1>"
        f'<p class="muted">{_html(overview["target"])}, refreshed every '
        f"{interval_seconds:g} s</p>"
    )
    main = (
        f'<ul class="problem" id="problems">{problems}</ul>'
        "<h2>Environments</h2>"
        + _table("environments", ENVIRONMENT_COLUMNS, overview["environments"], "name", "none")
        + "<h2>Recent deployments</h2>"
        + _table(
            "deployments",
            DEPLOYMENT_COLUMNS,
            overview["deployments"],
            "execution",
            "no deployments recorded",
        )
    )
    attributes = {
        "page": "overview",
        "api": "/api/overview",
        "interval": f"{interval_seconds:g}",
        "live": "true",
    }
    return _page("Control plane dashboard", attributes, header, main, overview["generatedAt"])


def execution_page(execution: dict[str, Any], interval_seconds: float) -> str:
    """Write an execution's page: its facts, notes and graph, refreshed while it runs."""
    rows = []
    for key, title in EXECUTION_FACTS:
        value = _html(execution.get(key))
        tag = "pre" if key == "cause" else "span"
        fact = f'<{tag} data-field="{key}" data-value="{value}">{value}</{tag}>'
        rows.append(f"<tr><th>{title}</th><td>{fact}</td></tr>")
    if execution.get("consoleUrl"):
        link = _html(execution["consoleUrl"])
        rows.append(f'<tr><th>Console</th><td><a href="{link}">AWS Step Functions</a></td></tr>')
    notes = "".join(f"<li>{_html(note)}</li>" for note in execution["notes"])
    header = (
        '<p><a href="/">All environments</a></p>'
        f"<h1>Execution {_html(execution['name'])}</h1>"
        f'<table class="facts" id="facts">{"".join(rows)}</table>'
        + (f'<ul class="problem">{notes}</ul>' if notes else "")
    )
    attributes = {
        "page": "execution",
        "api": f"/api{execution_path(execution['name'])}",
        "interval": f"{interval_seconds:g}",
        "live": "true" if execution["running"] else "false",
    }
    title = f"Execution {execution['name']}: {execution['status']}"
    graph = f'<div id="graph">{execution["graphSvg"]}</div>'
    return _page(title, attributes, header, graph, execution["generatedAt"])


def message_page(title: str, message: str) -> str:
    """Write a page that shows only an error message, with a link to the index."""
    header = f'<p><a href="/">All environments</a></p><h1>{_html(title)}</h1>'
    attributes = {"page": "message", "interval": "0", "live": "false"}
    main = f'<p class="problem">{_html(message)}</p>'
    return _page(title, attributes, header, main, utc_text(time.time()))
