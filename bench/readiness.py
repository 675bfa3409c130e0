"""Compare event-driven readiness with polling in the sandbox.

For each mode and launch time, the script deploys the sample app to a new environment in a
fresh sandbox (control_plane/sandbox/readiness_bench.py). It prints the execution's state
transitions, and the virtual seconds from EB completing the launch and the update to the next
state starting. Latencies are averaged per mode over several runs. Each run has its own
request id, so the jitter of the polling retries differs between runs.

    .venv/bin/python bench/readiness.py
    .venv/bin/python bench/readiness.py --modes events polling --launch 120 600 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from control_plane.sandbox.readiness_bench import (
    MODES,
    ReadinessRun,
    format_runs,
    measure_deployment,
)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="readiness modes to measure (default: all)",
    )
    parser.add_argument(
        "--launch",
        nargs="+",
        type=float,
        default=[120, 600],
        help="simulated EB launch times in virtual seconds (default: 120 600)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=2,
        help="deployments per mode and launch time, each with its own request id (default: 2)",
    )
    arguments = parser.parse_args(argv)
    if any(seconds <= 0 for seconds in arguments.launch):
        parser.error(f"--launch times must be positive seconds, got {arguments.launch}")
    if arguments.runs < 1:
        parser.error(f"--runs must be at least 1, got {arguments.runs}")
    return arguments


def summarize(runs: list[ReadinessRun]) -> str:
    """Average the latencies and list the transitions of each mode."""
    lines = ["", "mode         mean latency s  transitions by launch s"]
    for mode in dict.fromkeys(run.mode for run in runs):
        own = [run for run in runs if run.mode == mode]
        latencies = [value for run in own for value in run.latency_seconds.values()]
        transitions = {
            f"{launch:.0f}": sorted(
                {run.transitions for run in own if run.launch_seconds == launch}
            )
            for launch in dict.fromkeys(run.launch_seconds for run in own)
        }
        mean = statistics.mean(latencies) if latencies else float("nan")
        lines.append(f"{mode:<12} {mean:>14.1f}  {transitions}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    runs = []
    for mode in arguments.modes:
        for launch in arguments.launch:
            for number in range(1, arguments.runs + 1):
                started = time.monotonic()
                run = measure_deployment(mode, launch, request_id=f"bench-{number}")
                runs.append(run)
                print(
                    f"{mode} launch {launch:.0f} s run {number}: {run.status}, "
                    f"{time.monotonic() - started:.0f} s wall",
                    file=sys.stderr,
                    flush=True,
                )
    print(format_runs(runs))
    print(summarize(runs))
    failed = [run for run in runs if run.status != "SUCCEEDED"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
