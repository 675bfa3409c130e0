"""Runs `pulumi` subcommands: streams their output to the build log, records each command,
and retries a command that finds the stack locked."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import ConfigurationMissing, StackLocked

LOCK_TEXT = "the stack is currently locked by"
MAX_RETRY_DELAY_SECONDS = 60.0

logger = logging.getLogger("runner")


@dataclass(frozen=True)
class CommandResult:
    """Exit code and captured output of one pulumi command."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    @property
    def locked(self) -> bool:
        return LOCK_TEXT in self.output

    def error_text(self, limit: int = 2000) -> str:
        """Return the `error:` lines of the output (or its last lines) for a failure message."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        text = "\n".join(errors or lines[-5:]) or f"exit code {self.exit_code}"
        return text[-limit:]


class PulumiCli:
    """`pulumi` on PATH, run in the project directory."""

    def __init__(
        self,
        project_dir: Path,
        environ: dict[str, str],
        *,
        lock_retries: int,
        lock_retry_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.project_dir = project_dir
        self.environ = {**environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        self.lock_retries = lock_retries
        self.lock_retry_seconds = lock_retry_seconds
        self.sleep = sleep
        self.commands: list[str] = []

    def run(self, *args: str, stdin: str | None = None, echo: bool = True) -> CommandResult:
        """Run one command. `stdin` is written to the process and never logged.

        With `echo`, the command's output is copied to the build log as it arrives.
        """
        self.commands.append(" ".join(("pulumi", *args)))
        logger.info("running: pulumi %s", " ".join(args))
        try:
            process = subprocess.Popen(
                ["pulumi", *args],
                cwd=self.project_dir,
                env=self.environ,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except FileNotFoundError as error:
            raise ConfigurationMissing(
                "the pulumi CLI was not found on PATH; the build's install phase must install "
                "the version pinned in infra/versions.env (infra/install-pulumi.sh)."
            ) from error

        stdout_lines: list[str] = []
        stderr_lines: list[str] = []
        readers = [
            threading.Thread(target=_pump, args=(process.stdout, stdout_lines, echo), daemon=True),
            threading.Thread(target=_pump, args=(process.stderr, stderr_lines, True), daemon=True),
        ]
        for reader in readers:
            reader.start()
        if stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        exit_code = process.wait()
        for reader in readers:
            reader.join()

        result = CommandResult(tuple(args), exit_code, "".join(stdout_lines), "".join(stderr_lines))
        logger.info("pulumi %s exited with code %d", " ".join(args[:2]), exit_code)
        return result

    def run_locking(self, *args: str) -> CommandResult:
        """Run a command that takes the stack lock, retrying with backoff while it is held.

        Raises StackLocked when the lock is still held after the last retry.
        """
        attempts = self.lock_retries + 1
        for attempt in range(1, attempts + 1):
            result = self.run(*args)
            if not result.locked:
                return result
            if attempt == attempts:
                break
            delay = min(self.lock_retry_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)
            logger.warning(
                "stack is locked (attempt %d of %d); retrying pulumi %s in %.0f s: %s",
                attempt,
                attempts,
                args[0],
                delay,
                "; ".join(_lock_lines(result)),
            )
            self.sleep(delay)

        stack = _stack_argument(args)
        raise StackLocked(
            f"stack '{stack}' was still locked after {attempts} attempt(s) of `pulumi "
            f"{args[0]}`: {'; '.join(_lock_lines(result)) or result.error_text()}. If no "
            "other Pulumi run is active, the lock is stale: remove it with "
            f"`pulumi cancel --yes --stack {stack}`."
        )


def _pump(stream: IO[str], sink: list[str], echo: bool) -> None:
    """Copy a child's output line by line to `sink`, and to the build log with `echo`."""
    for line in stream:
        sink.append(line)
        if echo:
            print(line, end="", flush=True)
    stream.close()


def _lock_lines(result: CommandResult) -> list[str]:
    return [
        line.strip()
        for line in result.output.splitlines()
        if LOCK_TEXT in line or ": created by " in line
    ]


def _stack_argument(args: tuple[str, ...]) -> str:
    for flag in ("--stack", "-s"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return "<stack>"
