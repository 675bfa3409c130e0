"""Runs `pulumi` subcommands: streams their output to the build log, records each command,
and retries a command that finds the stack locked (cancelling a stale lock only when an
operator allows it)."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .errors import ConfigurationMissing, StackLocked
from .locks import LockInfo, describe_locks, is_locked, parse_locks

MAX_RETRY_DELAY_SECONDS = 60.0
UNKNOWN_STACK = "<stack>"

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
        return is_locked(self.output)

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
        cancel_stale_locks: bool = False,
        stale_lock_seconds: float = 3600.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        repairs: list[dict[str, Any]] | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.environ = {**environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        self.lock_retries = lock_retries
        self.lock_retry_seconds = lock_retry_seconds
        self.sleep = sleep
        self.cancel_stale_locks = cancel_stale_locks
        self.stale_lock_seconds = stale_lock_seconds
        self.now = now
        # Stale locks this CLI removed, as entries of the result document's `repairs`.
        self.repairs: list[dict[str, Any]] = [] if repairs is None else repairs
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

        Raises StackLocked when the lock is still held after the last retry. With
        `cancel_stale_locks`, locks older than `stale_lock_seconds` are then removed with
        `pulumi cancel` and the command runs once more.
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
                describe_locks(parse_locks(result.output), self.now()),
            )
            self.sleep(delay)

        stack = _stack_argument(args)
        locks = parse_locks(result.output)
        now = self.now()
        kept_reason = self._reason_to_keep_locks(locks, now, stack)
        if kept_reason is None:
            result = self._cancel_and_rerun(args, stack, locks, now)
            if not result.locked:
                return result
            locks = parse_locks(result.output)
            kept_reason = "The lock came back after `pulumi cancel` removed the stale one."
        raise StackLocked(
            f"stack '{stack}' is still locked after {attempts} attempt(s) of `pulumi "
            f"{args[0]}`. {describe_locks(locks, now)} If no other Pulumi run is active, the "
            f"lock is stale: clear it with `pulumi cancel --stack {stack} --yes`. {kept_reason}"
        )

    def _reason_to_keep_locks(self, locks: list[LockInfo], now: datetime, stack: str) -> str | None:
        """Return why the runner does not cancel these locks, or None when it does."""
        if not self.cancel_stale_locks:
            return (
                "The runner removes only locks older than PULUMI_STALE_LOCK_SECONDS "
                f"({self.stale_lock_seconds:.0f} s), and only when an operator sets "
                "PULUMI_CANCEL_STALE_LOCKS=true."
            )
        if stack == UNKNOWN_STACK or not locks:
            return "The runner did not cancel the lock because its owner and age are unknown."
        ages = [lock.age_seconds(now) for lock in locks]
        if any(age is None or age < self.stale_lock_seconds for age in ages):
            return (
                "The runner did not cancel it: a lock is younger than "
                f"PULUMI_STALE_LOCK_SECONDS ({self.stale_lock_seconds:.0f} s) or has no "
                "readable creation time."
            )
        return None

    def _cancel_and_rerun(
        self, args: tuple[str, ...], stack: str, locks: list[LockInfo], now: datetime
    ) -> CommandResult:
        logger.warning(
            "PULUMI_CANCEL_STALE_LOCKS is true and every lock is older than %.0f s; "
            "running pulumi cancel: %s",
            self.stale_lock_seconds,
            describe_locks(locks, now),
        )
        cancelled = self.run("cancel", "--stack", stack, "--yes")
        if not cancelled.ok:
            raise StackLocked(
                f"`pulumi cancel --stack {stack} --yes` failed: {cancelled.error_text()}. "
                f"{describe_locks(locks, now)}"
            )
        for lock in locks:
            self.repairs.append(
                {
                    "action": "cancelled-stale-lock",
                    "lock": lock.path,
                    "owner": lock.owner,
                    "created": lock.created_text,
                    "ageSeconds": lock.age_seconds(now),
                }
            )
        return self.run(*args)


def _pump(stream: IO[str], sink: list[str], echo: bool) -> None:
    """Copy a child's output line by line to `sink`, and to the build log with `echo`."""
    for line in stream:
        sink.append(line)
        if echo:
            print(line, end="", flush=True)
    stream.close()


def _stack_argument(args: tuple[str, ...]) -> str:
    for flag in ("--stack", "-s"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return UNKNOWN_STACK
