"""Operation handler context, and the paging that the Describe operations share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from control_plane.sandbox.eb.errors import invalid_parameter
from control_plane.sandbox.eb.lifecycle import Lifecycle
from control_plane.sandbox.eb.state import SimulatorState
from control_plane.sandbox.eb.storage import Buckets

Item = TypeVar("Item")

# EB's Describe operations return at most 1000 records per page.
MAX_RECORDS = 1000


@dataclass
class OperationContext:
    state: SimulatorState
    lifecycle: Lifecycle
    fetch_object: Callable[[str, str], bytes]
    # Virtual time of the request, in epoch seconds.
    now: float
    request_id: str
    # Region of the endpoint that received the request, from its signature.
    region: str
    # The S3 calls of the simulator. With None, operations skip what needs S3.
    buckets: Buckets | None = None


def paginate(items: Sequence[Item], request: dict[str, Any]) -> tuple[list[Item], str | None]:
    """Return the page selected by MaxRecords and NextToken, and the token of the next page.

    The token is the decimal offset of the next record, which the sandbox need not hide.
    """
    max_records = request.get("MaxRecords", MAX_RECORDS)
    if not 1 <= max_records <= MAX_RECORDS:
        raise invalid_parameter(
            f"MaxRecords must be between 1 and {MAX_RECORDS}, got {max_records}."
        )
    token = request.get("NextToken", "0")
    if not token.isdigit():
        raise invalid_parameter(f"Invalid NextToken '{token}'.")
    start = int(token)
    end = start + max_records
    next_token = str(end) if end < len(items) else None
    return list(items[start:end]), next_token
