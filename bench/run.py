"""Measure the control plane against a baseline that mirrors the shell scripts it replaces.

The baseline is a real configuration of this system, measured in the same run. Mode `baseline`
of control_plane/sandbox/readiness_bench.py polls readiness every 20 s for up to 30 checks,
retries stack outputs 5 times 10 s apart and previews the stack on every deployment. The
current configuration is the default one (mode `events`). Each stdout line after the header
is one figure: its name, the current value, the reference and the ratio current / reference.
The reference is the baseline's value, or `target N` where the configuration makes no
difference (import times), or `-` where there is nothing to compare with. Progress and the
machine go to stderr.

    .venv/bin/python bench/run.py                  # everything: 15 to 20 minutes on 2 cores
    .venv/bin/python bench/run.py --skip-suite     # without the scenario suite: 2 to 6
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from control_plane.sandbox.readiness_bench import Mode, ReadinessRun, Redeploy, measure_deployment
from control_plane.sandbox.template import REPO_ROOT, jsii_environment

# AWS Step Functions Standard Workflows, https://aws.amazon.com/step-functions/pricing/: $0.025
# per 1,000 state transitions in us-east-1 and most other regions, retries included. Every
# account gets 4,000 free state transitions a month.
USD_PER_STATE_TRANSITION = 0.025 / 1000
FREE_STATE_TRANSITIONS_PER_MONTH = 4000
# Cold import budget of each Lambda handler module.
IMPORT_TARGET_MS = 300
CLI_MODULE = "control_plane.cli"

CURRENT: Mode = "events"
BASELINE: Mode = "baseline"
HAPPY_LAUNCH_SECONDS = 120
LONG_LAUNCH_SECONDS = 600
UPDATE_SECONDS = 90
# Polling notices Ready at its next check, so its latency depends on where the launch and the
# update end between two checks. The latency runs shift both by these offsets, spread over the
# baseline's 20 s interval, and report the mean.
PHASE_OFFSETS_SECONDS = (0, 5, 10, 15)

NAME_WIDTH = 68


@dataclass(frozen=True)
class Figure:
    """One measured figure and what it is compared with."""

    name: str
    current: float
    # The baseline's value, or the target when `is_target`; None when there is none.
    reference: float | None = None
    is_target: bool = False
    digits: int = 1

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference == 0:
            return None
        return self.current / self.reference

    def line(self) -> str:
        if self.reference is None:
            reference = "-"
        elif self.is_target:
            reference = f"target {self.reference:.{self.digits}f}"
        else:
            reference = f"{self.reference:.{self.digits}f}"
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        return (
            f"{self.name.ljust(NAME_WIDTH)}  {self.current:>12.{self.digits}f}  "
            f"{reference:>14}  {ratio:>6}"
        )


HEADER = f"{'figure'.ljust(NAME_WIDTH)}  {'current':>12}  {'baseline':>14}  {'ratio':>6}"


def format_figures(figures: Iterable[Figure]) -> str:
    """Lay the figures out as the header and one line each."""
    return "\n".join([HEADER, *(figure.line() for figure in figures)])


# Deployments in the sandbox


@dataclass(frozen=True)
class ModeRuns:
    """The deployments of one configuration that the figures come from."""

    # The first deployment with a 120 s launch, followed by a no-change redeploy.
    happy: ReadinessRun
    # The first deployment with a 10-minute launch.
    long: ReadinessRun
    # First deployments whose launch and update end at other points between two polls; the
    # happy-path run is the first of them.
    phases: list[ReadinessRun]

    @property
    def runs(self) -> list[ReadinessRun]:
        return [self.long, *self.phases]


def run_mode(
    mode: Mode,
    *,
    offsets: tuple[float, ...] = PHASE_OFFSETS_SECONDS,
    work_root: Path | None = None,
) -> ModeRuns:
    """Deploy the sample app in fresh sandboxes in one configuration: see ModeRuns."""
    phases = []
    for offset in offsets:
        started = time.monotonic()
        run = measure_deployment(
            mode,
            HAPPY_LAUNCH_SECONDS + offset,
            update_seconds=UPDATE_SECONDS + offset,
            work_root=work_root,
            redeploy=not phases,
        )
        _progress(f"{mode}: launch {run.launch_seconds:.0f} s", run, started)
        phases.append(run)
    started = time.monotonic()
    long = measure_deployment(
        mode, LONG_LAUNCH_SECONDS, update_seconds=UPDATE_SECONDS, work_root=work_root
    )
    _progress(f"{mode}: launch {LONG_LAUNCH_SECONDS} s", long, started)
    return ModeRuns(happy=phases[0], long=long, phases=phases)


def _progress(label: str, run: ReadinessRun, started: float) -> None:
    print(
        f"{label}: {run.status}, {time.monotonic() - started:.0f} s wall",
        file=sys.stderr,
        flush=True,
    )


def deployment_figures(current: ModeRuns, baseline: ModeRuns) -> list[Figure]:
    """Compare the deployments of the two configurations, figure by figure."""
    current_again = _redeploy(current)
    baseline_again = _redeploy(baseline)
    transitions = [
        (
            f"first deployment, {HAPPY_LAUNCH_SECONDS // 60} min launch",
            current.happy.transitions,
            baseline.happy.transitions,
        ),
        (
            f"first deployment, {LONG_LAUNCH_SECONDS // 60} min launch",
            current.long.transitions,
            baseline.long.transitions,
        ),
        ("no-change redeploy", current_again.transitions, baseline_again.transitions),
    ]
    figures = [
        Figure(f"state transitions: {name}", now, before, digits=0)
        for name, now, before in transitions
    ]
    figures += [
        Figure(
            f"virtual s from {event} to next state (mean of {len(current.phases)} launches)",
            _mean_latency(current, wait),
            _mean_latency(baseline, wait),
        )
        for wait, event in (("environment", "environment Ready"), ("deployment", "update done"))
    ]
    figures.append(
        Figure(
            "CodeBuild builds started: no-change redeploy",
            current_again.builds_started,
            baseline_again.builds_started,
            digits=0,
        )
    )
    figures += [
        Figure(
            f"Step Functions USD per deployment: {name}",
            now * USD_PER_STATE_TRANSITION,
            before * USD_PER_STATE_TRANSITION,
            digits=6,
        )
        for name, now, before in transitions
    ]
    return figures


def _redeploy(runs: ModeRuns) -> Redeploy:
    if runs.happy.redeploy is None:
        raise ValueError(f"the happy-path run of {runs.happy.mode} has no redeploy")
    return runs.happy.redeploy


def _mean_latency(runs: ModeRuns, wait: str) -> float:
    latencies = [run.latency_seconds[wait] for run in runs.phases if wait in run.latency_seconds]
    if not latencies:
        raise ValueError(f"no {wait} wait was measured in mode {runs.happy.mode}")
    return statistics.mean(latencies)


def failed_deployments(*modes: ModeRuns) -> list[str]:
    """Name each measured deployment that did not succeed."""
    failed = []
    for runs in modes:
        for run in runs.runs:
            if run.status != "SUCCEEDED":
                failed.append(f"{run.mode} launch {run.launch_seconds:.0f} s: {run.status}")
        again = runs.happy.redeploy
        if again is not None and again.status != "SUCCEEDED":
            failed.append(f"{runs.happy.mode} no-change redeploy: {again.status}")
    return failed


# Import times


@dataclass(frozen=True)
class ImportEntry:
    """One line of `python -X importtime` output."""

    name: str
    depth: int
    self_us: int
    cumulative_us: int


def parse_importtime(output: str) -> list[ImportEntry]:
    """Parse the `import time: self | cumulative | name` lines, in the order Python wrote them.

    Python indents the name by two spaces per level of nesting, after one space.
    """
    entries = []
    for line in output.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        indent = len(fields[2]) - len(fields[2].lstrip(" "))
        entries.append(
            ImportEntry(
                name=fields[2].strip(),
                depth=(indent - 1) // 2,
                self_us=int(fields[0]),
                cumulative_us=int(fields[1]),
            )
        )
    return entries


def module_import_us(entries: list[ImportEntry], module: str) -> int:
    """Return the microseconds that importing `module` took: the cumulative time of the
    top-level entries for it and its parent packages."""
    parts = module.split(".")
    names = {".".join(parts[:length]) for length in range(1, len(parts) + 1)}
    return sum(entry.cumulative_us for entry in entries if entry.depth == 0 and entry.name in names)


def dominant_imports(entries: list[ImportEntry], count: int = 5) -> list[tuple[str, float]]:
    """Return the outermost imports of other packages (third-party or the standard library)
    with the largest cumulative ms.

    An entry counts when no other package's entry contains it. Python prints a module after
    the modules it imported, so a module's own imports are the deeper lines just before it.
    """
    own = ("lambdas", "control_plane")
    outermost: list[ImportEntry] = []
    for index, entry in enumerate(entries):
        if entry.name.split(".")[0] in own or entry.depth == 0:
            continue
        container = _container(entries, index)
        if container is None or container.name.split(".")[0] in own:
            outermost.append(entry)
    ranked = sorted(outermost, key=lambda entry: entry.cumulative_us, reverse=True)
    return [(entry.name, entry.cumulative_us / 1000) for entry in ranked[:count]]


def _container(entries: list[ImportEntry], index: int) -> ImportEntry | None:
    """Return the entry whose import contained entries[index]: the next shallower line."""
    depth = entries[index].depth
    for entry in entries[index + 1 :]:
        if entry.depth < depth:
            return entry
    return None


def measure_import(module: str, runs: int) -> tuple[float, list[ImportEntry]]:
    """Import `module` in `runs` fresh interpreters; return the fastest run's ms and entries.

    The fastest run is the one least disturbed by other work on the machine. The bytecode
    caches are warm after the first run, so the figure leaves out compiling the sources.
    """
    best: tuple[float, list[ImportEntry]] | None = None
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{result.stderr[-2000:]}")
        entries = parse_importtime(result.stderr)
        milliseconds = module_import_us(entries, module) / 1000
        if best is None or milliseconds < best[0]:
            best = (milliseconds, entries)
    if best is None:
        raise ValueError(f"runs must be at least 1, got {runs}")
    return best


def handler_modules() -> list[str]:
    """Return every Lambda handler module: one per file in lambdas/."""
    return sorted(
        f"lambdas.{path.stem}"
        for path in (REPO_ROOT / "lambdas").glob("*.py")
        if path.stem != "__init__"
    )


def import_figures(runs: int) -> tuple[list[Figure], dict[str, list[tuple[str, float]]]]:
    """Time the import of each handler module and the CLI.

    Returns the figures, and the dominant imports of each handler module over the target.
    """
    figures = []
    over_target = {}
    for module in handler_modules():
        milliseconds, entries = measure_import(module, runs)
        figures.append(
            Figure(f"import ms: {module}", milliseconds, IMPORT_TARGET_MS, is_target=True)
        )
        if milliseconds > IMPORT_TARGET_MS:
            over_target[module] = dominant_imports(entries)
    slowest = max(figures, key=lambda figure: figure.current)
    figures.append(
        Figure(
            f"import ms: slowest handler ({slowest.name.removeprefix('import ms: ')})",
            slowest.current,
            IMPORT_TARGET_MS,
            is_target=True,
        )
    )
    milliseconds, _ = measure_import(CLI_MODULE, runs)
    figures.append(Figure(f"import ms: {CLI_MODULE} (the CLI)", milliseconds))
    return figures, over_target


# cdk synth and the scenario suite


def time_synth() -> float:
    """Time `cdk synth --quiet` as `make synth` runs it, into a temporary output folder.

    Notices and telemetry are turned off, so the CLI opens no connection.
    """
    environment = {
        **os.environ,
        **jsii_environment(),
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as folder:
        command = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices"]
        command += ["--output", str(Path(folder) / "cdk.out")]
        started = time.monotonic()
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=False
        )
        elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


@dataclass(frozen=True)
class SuiteRun:
    """One run of the scenario suite."""

    seconds: float
    returncode: int
    summary: str


def time_suite() -> SuiteRun:
    """Run the scenario files (tests/workflow) as `make test` runs the suite, and time it."""
    command = [sys.executable, "-m", "pytest", "-q", "-n", "auto", "--dist", "loadfile"]
    command.append("tests/workflow")
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    lines = result.stdout.strip().splitlines()
    return SuiteRun(elapsed, result.returncode, lines[-1] if lines else result.stderr[-500:])


def describe_machine() -> str:
    """Describe the machine and the moment of the run, for the record."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load}"
    )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-suite", action="store_true", help="do not run and time the scenario suite"
    )
    parser.add_argument("--skip-synth", action="store_true", help="do not time cdk synth")
    parser.add_argument(
        "--import-runs",
        type=int,
        default=5,
        help="fresh interpreters per module; the fastest counts (default: 5)",
    )
    parser.add_argument(
        "--phases",
        type=int,
        default=len(PHASE_OFFSETS_SECONDS),
        choices=range(1, len(PHASE_OFFSETS_SECONDS) + 1),
        help="launch times per configuration for the latency figures, 5 s apart (default: 4)",
    )
    arguments = parser.parse_args(argv)
    if arguments.import_runs < 1:
        parser.error(f"--import-runs must be at least 1, got {arguments.import_runs}")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    print(describe_machine(), file=sys.stderr, flush=True)
    # The timings come first, before the sandboxes and the suite load the machine.
    print("timing imports", file=sys.stderr, flush=True)
    figures, over_target = import_figures(arguments.import_runs)
    for module, dominant in over_target.items():
        listed = ", ".join(f"{name} {milliseconds:.0f} ms" for name, milliseconds in dominant)
        print(f"{module} is over {IMPORT_TARGET_MS} ms; largest imports: {listed}", file=sys.stderr)
    if not arguments.skip_synth:
        print("timing cdk synth", file=sys.stderr, flush=True)
        figures.append(Figure("wall s: cdk synth --quiet", time_synth()))

    offsets = PHASE_OFFSETS_SECONDS[: arguments.phases]
    current = run_mode(CURRENT, offsets=offsets)
    baseline = run_mode(BASELINE, offsets=offsets)
    figures += deployment_figures(current, baseline)
    problems = failed_deployments(current, baseline)

    if not arguments.skip_suite:
        print("running the scenario suite (tests/workflow)", file=sys.stderr, flush=True)
        suite = time_suite()
        print(f"scenario suite: {suite.summary}", file=sys.stderr, flush=True)
        figures.append(Figure("wall s: scenario suite (tests/workflow)", suite.seconds))
        if suite.returncode != 0:
            problems.append(f"the scenario suite failed: {suite.summary}")

    print(format_figures(figures))
    print(
        f"Step Functions price: ${USD_PER_STATE_TRANSITION * 1000:.3f} per 1,000 state "
        f"transitions; the first {FREE_STATE_TRANSITIONS_PER_MONTH:,} a month are free",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
