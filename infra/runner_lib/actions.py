"""Steps of each runner action (`up`, `recover`, `check`, `check-only`).

Every run checks the CLI version, selects the stack and checks the selection, sets the
secret config keys from SSM Parameter Store or Secrets Manager and repairs pending operations
of an interrupted update before the action. Each Pulumi operation is bracketed by
`pulumi stack --show-name`, so a run never proceeds against another stack. A `check-only`
run changes nothing: it neither creates a stack nor repairs pending operations.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from .beanstalk import BeanstalkCheckFailed, EnvironmentWaiter
from .errors import ConfigurationMissing, PreviewFailed, RunnerError, StackNotSelected, UpFailed
from .pending import repair_pending_operations
from .preview import PreviewOutcome, classify_preview
from .pulumi_cli import CommandResult, PulumiCli
from .result import ResultDocument, has_changes, parse_change_summary, public_outputs
from .secrets import SecretReader
from .settings import CHECK_ONLY, PREVIEW_ACTIONS, RunnerSettings

EB_ENVIRONMENT_TYPE = "aws:elasticbeanstalk/environment:Environment"
MISSING_CONFIG = re.compile(
    r"Missing required (?:secret config key|configuration variable) '([^']+)'"
)
# EB's error for UpdateEnvironment while another operation of the environment runs.
NOT_READY = re.compile(
    r"Environment named (?P<name>[A-Za-z0-9-]+) is in an invalid state for this operation\. "
    r"Must be Ready\."
)

logger = logging.getLogger("runner")


# Resource types that `up` writes again in place after they are dropped from the state.
RECREATED_BY_UP = frozenset({"aws:route53/record:Record"})
_DEPENDENT_URN = re.compile(r"^\s*[-*]?\s*[\"']?(urn:pulumi:[^\s\"']+)", re.MULTILINE)


def _dependents(output: str) -> list[str]:
    """Return the URNs that `pulumi state delete` names as depending on the resource."""
    marker = "depend on it"
    if marker not in output:
        return []
    return _DEPENDENT_URN.findall(output.split(marker, 1)[1])


class Runner:
    """One build: the checks every run makes, then the requested action."""

    def __init__(
        self,
        settings: RunnerSettings,
        cli: PulumiCli,
        secrets: SecretReader,
        infra_dir: Path,
        expected_cli_version: str,
        result: ResultDocument,
        waiter: EnvironmentWaiter,
    ) -> None:
        self.settings = settings
        self.stack = settings.stack
        self.cli = cli
        self.secrets = secrets
        self.waiter = waiter
        self.infra_dir = infra_dir
        self.expected_cli_version = expected_cli_version
        self.result = result
        # `check` never runs `up` after a failed preview, so its failures are PreviewFailed.
        self.failure = PreviewFailed if settings.action in PREVIEW_ACTIONS else UpFailed
        # Last `pulumi stack export`, valid until the next stack operation.
        self._exported: dict[str, Any] | None = None

    def run(self) -> None:
        self.check_cli_version()
        self.select_stack()
        self.set_secrets()
        if self.settings.action != CHECK_ONLY:
            repair_pending_operations(self)
        if self.settings.action == "up":
            self.up()
        elif self.settings.action == "recover":
            self.recover()
        elif self.settings.action == CHECK_ONLY:
            self.check_only()
        else:
            self.check()
        self.read_outputs()

    # Preconditions -------------------------------------------------------------------

    def check_cli_version(self) -> None:
        result = self.cli.run("version")
        if not result.ok:
            raise ConfigurationMissing(f"`pulumi version` failed: {result.error_text()}")
        found = (result.stdout.strip().splitlines() or [""])[-1].strip().lstrip("v")
        if found != self.expected_cli_version:
            raise ConfigurationMissing(
                f"the pulumi CLI on PATH is v{found}, but infra/versions.env pins "
                f"PULUMI_VERSION={self.expected_cli_version}; install the pinned version "
                "(infra/install-pulumi.sh) before running the runner."
            )
        logger.info("pulumi CLI v%s matches the pinned version", found)

    def select_stack(self) -> None:
        listing = self.cli.run("stack", "ls", "--json")
        if not listing.ok:
            raise StackNotSelected(f"`pulumi stack ls` failed: {listing.error_text()}")
        try:
            names = {str(entry["name"]).split("/")[-1] for entry in json.loads(listing.stdout)}
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise StackNotSelected(
                f"`pulumi stack ls --json` printed something other than a stack list: {error}"
            ) from error

        if self.stack in names:
            selected = self.cli.run("stack", "select", self.stack)
        elif self.settings.action == CHECK_ONLY:
            raise StackNotSelected(
                f"stack '{self.stack}' is not in the backend ({self.settings.backend_url}); a "
                "check-only run does not create it. Deploy the environment first."
            )
        elif (self.infra_dir / f"Pulumi.{self.stack}.yaml").exists():
            logger.info(
                "stack %s is not in the backend yet; creating it (defined by Pulumi.%s.yaml)",
                self.stack,
                self.stack,
            )
            # Creating a stack takes its lock, which a concurrent run may hold.
            selected = self.cli.run_locking("stack", "select", "--create", "--stack", self.stack)
        else:
            raise StackNotSelected(
                f"stack '{self.stack}' is not in the backend ({self.settings.backend_url}) "
                f"and infra/Pulumi.{self.stack}.yaml does not define it; fix PULUMI_STACK "
                "or add the stack file."
            )
        if not selected.ok:
            raise StackNotSelected(
                f"`pulumi stack select {self.stack}` failed: {selected.error_text()}"
            )
        self.verify_selected("after `pulumi stack select`")

    def verify_selected(self, when: str) -> None:
        """Raise StackNotSelected unless the selected stack is the expected one."""
        name_result = self.cli.run("stack", "--show-name")
        if not name_result.ok:
            raise StackNotSelected(
                f"`pulumi stack --show-name` failed {when}: {name_result.error_text()}"
            )
        selected = name_result.stdout.strip().split("/")[-1]
        if selected != self.stack:
            raise StackNotSelected(
                f"expected stack '{self.stack}' to be selected {when}, but `pulumi stack "
                f"--show-name` printed '{selected}'; the runner does not run against another stack."
            )

    def set_secrets(self) -> None:
        """Set each secret config key from its store; the value goes through stdin."""
        for key, reference in sorted(self.settings.secrets.items()):
            if reference.source == "stack_config":
                logger.info("secret config key %s is set in the stack's settings file", key)
                continue
            value = self.secrets.read(reference)
            result = self.cli.run(
                "config", "set", "--secret", key, "--stack", self.stack, stdin=value
            )
            if not result.ok:
                raise ConfigurationMissing(
                    f"`pulumi config set --secret {key}` failed: {result.error_text()}"
                )
            logger.info("secret config key %s set from %s", key, reference.describe())

    # Actions -------------------------------------------------------------------------

    def up(self, *, refresh: bool = False) -> None:
        args = ["up", "--yes", "--skip-preview", "--stack", self.stack]
        if refresh:
            args.insert(3, "--refresh")
        result = self.run_operation(*args)
        if not result.ok:
            result = self._retry_when_not_ready(result, args)
        if not result.ok:
            self.raise_failure(result, "`pulumi up`", UpFailed)
        counts = parse_change_summary(result.stdout)
        self.result.summary = counts
        self.result.changes = has_changes(counts) if counts else None
        logger.info("pulumi up finished: %s", counts or "no change summary found")

    def recover(self) -> None:
        """Drop a terminated EB environment from the state, then `up` to recreate it."""
        urns = self.environment_urns()
        if not urns:
            logger.info("no Elastic Beanstalk environment in state; running up")
        for urn in urns:
            refreshed = self.run_operation(
                "refresh", "--yes", "--target", urn, "--stack", self.stack
            )
            if refreshed.ok:
                logger.info("refreshed %s", urn)
            else:
                logger.warning("refresh of %s failed: %s", urn, refreshed.error_text())

            if urn not in self.environment_urns():
                logger.info("refresh dropped %s from the state", urn)
                continue
            self._check_safe_to_forget(urn)
            logger.info("%s is still in the state; deleting it from the state", urn)
            deleted = self.run_operation(
                "state", "delete", urn, "--force", "--yes", "--stack", self.stack
            )
            dependents = _dependents(deleted.output) if not deleted.ok else []
            if dependents and self._recreated_by_up(dependents):
                logger.info(
                    "%s has dependents the next up recreates (%s); deleting them too",
                    urn,
                    ", ".join(dependents),
                )
                deleted = self.run_operation(
                    "state",
                    "delete",
                    urn,
                    "--force",
                    "--yes",
                    "--target-dependents",
                    "--stack",
                    self.stack,
                )
            if not deleted.ok:
                raise UpFailed(
                    f"recovery could not remove {urn} from the state: {deleted.error_text()}"
                )
        self.up()
        self.result.changes = True

    def check(self) -> None:
        """Preview with refresh; run `up` only when the preview's JSON shows real changes.

        A failed preview (an error diagnostic, or an exit code other than 0 and 7) is
        PreviewFailed and never leads to `up`. Differences that are only EB's rewrites of
        option settings count as no change.
        """
        outcome = self.preview_drift()
        self.result.drift = outcome.changes
        if outcome.kind == "clean":
            self.result.changes = False
            logger.info("preview proposed no changes; not running up")
            return

        logger.info("preview proposed changes (%s); running up with refresh", outcome.reason)
        # --refresh makes `up` act on the drift the refreshing preview found, such as an
        # environment deleted outside Pulumi, which a plain `up` would see as unchanged.
        self.up(refresh=True)
        self.result.changes = True

    def check_only(self) -> None:
        """Preview with refresh and report the drift; change neither the stack nor its state.

        The build succeeds whether or not the preview finds drift (its exit code 7 under
        `--expect-no-changes`), and the result's `drift` lists what differs from the program.
        Pending operations of an interrupted update count as drift, because only a deployment
        repairs them.
        """
        pending = [
            f"pending {operation.get('type', '?')} of "
            f"{(operation.get('resource') or {}).get('urn', '?')} left by an interrupted update"
            for operation in self.export_state().get("pending_operations") or []
        ]
        outcome = self.preview_drift()
        self.result.drift = [*pending, *outcome.changes]
        self.result.changes = False
        if self.result.drift:
            logger.warning(
                "drift found, nothing changed (check-only): %s", "; ".join(self.result.drift)
            )
        else:
            logger.info("preview found no drift")

    def preview_drift(self) -> PreviewOutcome:
        """Run the refreshing preview; raise PreviewFailed when it fails, else classify it."""
        result = self.run_operation(
            "preview", "--refresh", "--diff", "--expect-no-changes", "--json", "--stack", self.stack
        )
        outcome = classify_preview(result)
        self.result.summary = outcome.summary
        self.result.ignored_diffs = outcome.ignored
        for ignored in outcome.ignored:
            logger.info(
                "ignoring the %s diff of %s: %r in state, %r in the program (EB rewrites "
                "this option's value)",
                ignored["setting"],
                ignored["urn"],
                ignored["old"],
                ignored["new"],
            )
        if outcome.kind == "failed":
            self.raise_failure(result, "`pulumi preview`", PreviewFailed, reason=outcome.reason)
        return outcome

    def read_outputs(self) -> None:
        output_result = self.cli.run("stack", "output", "--json", "--stack", self.stack)
        if not output_result.ok:
            logger.warning("could not read stack outputs: %s", output_result.error_text())
            return
        try:
            self.result.outputs = public_outputs(output_result.stdout)
        except json.JSONDecodeError as error:
            logger.warning("`pulumi stack output --json` printed invalid JSON: %s", error)

    # Helpers -------------------------------------------------------------------------

    def run_operation(self, *args: str) -> CommandResult:
        """Run a stack operation with lock retries, checking the selected stack around it."""
        self.verify_selected(f"before `pulumi {args[0]}`")
        self._exported = None
        result = self.cli.run_locking(*args)
        self.verify_selected(f"after `pulumi {args[0]}`")
        return result

    def export_state(self) -> dict[str, Any]:
        """Return the stack's deployment (`pulumi stack export`), read again after each
        stack operation."""
        if self._exported is not None:
            return self._exported
        # The export is the whole state: parsed here, not copied to the build log.
        exported = self.cli.run("stack", "export", "--stack", self.stack, echo=False)
        if not exported.ok:
            raise self.failure(f"`pulumi stack export` failed: {exported.error_text()}")
        try:
            self._exported = json.loads(exported.stdout).get("deployment") or {}
        except json.JSONDecodeError as error:
            raise self.failure(f"`pulumi stack export` printed invalid JSON: {error}") from error
        return self._exported

    def _recreated_by_up(self, dependents: list[str]) -> bool:
        """Return whether forgetting these dependents is safe: `up` recreates them in place.

        Route 53 records are declared with allow_overwrite, so `up` writes them again over
        the live ones. Anything else, such as a CloudFront distribution, still exists in AWS,
        and a second one would clash with it.
        """
        types = {urn.split("::")[2].split("$")[-1] for urn in dependents if urn.count("::") >= 3}
        return bool(types) and types <= RECREATED_BY_UP

    def _check_safe_to_forget(self, urn: str) -> None:
        """Raise UpFailed unless EB confirms the environment is gone.

        Deleting a live or Terminating environment from the state would make the next `up`
        create a second one, or fail on the name, so an unreadable status also stops here.
        """
        name = self._environment_name(urn)
        try:
            environment = self.waiter.describe(name) if name else None
        except BeanstalkCheckFailed as error:
            raise UpFailed(
                f"recovery will not delete {urn} from the state because its status could not "
                f"be read: {error}"
            ) from None
        if name is None:
            raise UpFailed(f"recovery found no environment name for {urn} in the state")
        if environment is not None:
            raise UpFailed(
                f"recovery will not delete {urn} from the state: environment {name} is "
                f"{environment.get('Status')} in Elastic Beanstalk, not terminated. Deploy again "
                "once its operation has ended."
            )

    def _environment_name(self, urn: str) -> str | None:
        for resource in self.export_state().get("resources") or []:
            if resource.get("urn") == urn:
                values = resource.get("outputs") or resource.get("inputs") or {}
                return values.get("name")
        return None

    def environment_urns(self) -> list[str]:
        resources = self.export_state().get("resources") or []
        return [r["urn"] for r in resources if r.get("type") == EB_ENVIRONMENT_TYPE]

    def _retry_when_not_ready(self, result: CommandResult, args: list[str]) -> CommandResult:
        """Run `up` once more after EB rejected it because the environment was not Ready.

        A tag change makes EB update the environment, so an update that changes a tag and a
        setting can fail on its second call. The runner waits for the environment to be Ready
        (bounded by EB_WAIT_TIMEOUT_SECONDS) and returns the result of the second `up`.
        """
        rejected = NOT_READY.search(result.output)
        if rejected is None:
            return result
        name = rejected.group("name")
        logger.warning(
            "Elastic Beanstalk rejected the update: %s Waiting for environment %s to be "
            "Ready before running pulumi up once more",
            rejected.group(0),
            name,
        )
        try:
            environment, waited = self.waiter.wait_while_transitional(name)
        except BeanstalkCheckFailed as error:
            raise UpFailed(
                f"`pulumi up` failed because EB rejected the update: {rejected.group(0)} The "
                f"runner waited for the environment to be Ready and gave up: {error}"
            ) from error
        status = environment.get("Status") if environment else "gone"
        if status != "Ready":
            raise UpFailed(
                f"`pulumi up` failed because EB rejected the update: {rejected.group(0)} "
                f"Environment {name} is now {status}, so the runner did not run `pulumi up` "
                "again."
            )
        logger.info("environment %s is Ready after %.0f s; running pulumi up again", name, waited)
        self.result.repairs.append(
            {
                "action": "retried-up-after-environment-ready",
                "environment": name,
                "waitedSeconds": round(waited),
            }
        )
        return self.run_operation(*args)

    def raise_failure(
        self,
        result: CommandResult,
        what: str,
        error_class: type[RunnerError] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        """Raise the runner error for a failed command; `reason` replaces its error lines."""
        missing = MISSING_CONFIG.search(result.output)
        if missing:
            raise ConfigurationMissing(
                f"{what} failed because config key '{missing.group(1)}' is not set: "
                f"{result.error_text()} Add it to PULUMI_SECRETS if it is a secret, or to "
                f"infra/Pulumi.{self.stack}.yaml otherwise."
            )
        error_class = error_class or self.failure
        if reason is not None:
            raise error_class(f"{what} failed (exit code {result.exit_code}): {reason}")
        raise error_class(f"{what} failed (exit code {result.exit_code}): {result.error_text()}")
