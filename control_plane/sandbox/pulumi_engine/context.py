"""Everything one engine command works with: project, stack, backend, secrets, AWS clients."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import cached_property
from importlib.metadata import version as package_version
from typing import Any

from .aws import ClientFactory, default_region
from .backend import BackendUrl, DiyBackend
from .crypto import Crypter, crypter_from_salt_state, new_salt_state, read_passphrase
from .errors import ConfigurationError, StackNotFoundError
from .project import Project, StackConfigFile, find_project, resolve_stack, working_directory
from .providers import ProviderContext
from .simulation import parse_simulations
from .state import (
    ResourceState,
    Snapshot,
    dump_checkpoint,
    load_resource,
    load_snapshot,
    now_rfc3339,
)

CLI_VERSION = package_version("pulumi")
DEFAULT_ACCOUNT_ID = "123456789012"


class EngineContext:
    """Lazily built state of one command invocation."""

    def __init__(
        self,
        environ: dict[str, str],
        endpoint_url: str,
        *,
        cwd: str | None,
        stack: str | None,
    ) -> None:
        self.environ = environ
        self.clients = ClientFactory(endpoint_url, environ)
        self._cwd = cwd
        self._stack_option = stack
        self._crypters: dict[str, Crypter] = {}
        self.plugin_versions: dict[str, str] = {}

    @cached_property
    def project(self) -> Project:
        return find_project(working_directory(self._cwd))

    @cached_property
    def backend(self) -> DiyBackend:
        url = self.environ.get("PULUMI_BACKEND_URL")
        if not url:
            raise ConfigurationError(
                "PULUMI_BACKEND_URL is not set. The sandbox engine keeps state only in an S3 "
                "bucket of the local AWS stand-in; set PULUMI_BACKEND_URL=s3://<bucket>."
            )
        parsed = BackendUrl.parse(url)
        s3 = self.clients.client("s3", parsed.region or default_region(self.environ))
        disable_backups = self.environ.get("PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS", "")
        backend = DiyBackend(
            parsed,
            self.project.name,
            s3,
            write_backups=disable_backups.lower() not in ("1", "true"),
        )
        backend.ensure_layout()
        return backend

    @cached_property
    def stack(self) -> str:
        return resolve_stack(self.project, self.environ, self._stack_option)

    def require_stack(self) -> str:
        """Return the stack name after checking that the stack exists in the backend."""
        if not self.backend.stack_exists(self.stack):
            raise StackNotFoundError(f"no stack named '{self.stack}' found")
        return self.stack

    @cached_property
    def stack_config(self) -> StackConfigFile:
        return StackConfigFile.load(self.project, self.stack)

    @property
    def region(self) -> str:
        region = self.stack_config.config.get("aws:region")
        return str(region) if region else default_region(self.environ)

    @property
    def provider_context(self) -> ProviderContext:
        account_id = self.environ.get("MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
        return ProviderContext(
            clients=self.clients,
            region=self.region,
            account_id=account_id,
            simulations=parse_simulations(self.environ),
        )

    # Secrets -------------------------------------------------------------------------

    def crypter_for(self, salt_state: str) -> Crypter:
        if salt_state not in self._crypters:
            passphrase = read_passphrase(self.environ)
            self._crypters[salt_state] = crypter_from_salt_state(passphrase, salt_state)
        return self._crypters[salt_state]

    def config_crypter(self) -> Crypter:
        """Crypter of the stack config, creating `encryptionsalt` if the file has none.

        A new salt reuses the checkpoint's salt when there is one, so config written in a
        fresh checkout (as in each CodeBuild build) and the state share one key.
        """
        salt_state = self.stack_config.encryption_salt
        if not salt_state:
            salt_state = self._checkpoint_salt() or new_salt_state(read_passphrase(self.environ))
            self.stack_config.encryption_salt = salt_state
            self.stack_config.save()
        return self.crypter_for(salt_state)

    def _checkpoint_salt(self) -> str | None:
        if not self.backend.stack_exists(self.stack):
            return None
        return self.load_snapshot().salt_state

    def program_config(self) -> tuple[dict[str, str], list[str]]:
        return self.stack_config.program_config(self.config_crypter)

    # State ---------------------------------------------------------------------------

    def load_snapshot(self) -> Snapshot:
        checkpoint = self.backend.read_checkpoint(self.require_stack())
        latest = (checkpoint.get("checkpoint") or {}).get("latest") or {}
        salt_state = ((latest.get("secrets_providers") or {}).get("state") or {}).get("salt")
        return load_snapshot(checkpoint, self._crypter_getter(salt_state))

    def resource_from_checkpoint(
        self, raw: dict[str, Any], salt_state: str | None
    ) -> ResourceState:
        """Parse a checkpoint resource whose secrets use the key of `salt_state`."""
        return load_resource(raw, self._crypter_getter(salt_state))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Write the checkpoint, encrypting secrets with the stack config's key."""
        snapshot.salt_state = self.stack_config.encryption_salt or snapshot.salt_state

        def get_crypter() -> Crypter:
            if snapshot.salt_state:
                return self.crypter_for(snapshot.salt_state)
            crypter = self.config_crypter()
            snapshot.salt_state = self.stack_config.encryption_salt
            return crypter

        checkpoint = dump_checkpoint(
            self.backend.fully_qualified_name(self.stack), snapshot, get_crypter, self._manifest()
        )
        self.backend.write_checkpoint(self.stack, checkpoint)

    def _crypter_getter(self, salt_state: str | None) -> Callable[[], Crypter]:
        def get_crypter() -> Crypter:
            if not salt_state:
                raise ConfigurationError(
                    "the checkpoint contains secrets but no secrets provider salt, so it cannot "
                    "be decrypted; restore the checkpoint from its .bak copy"
                )
            return self.crypter_for(salt_state)

        return get_crypter

    def _manifest(self) -> dict[str, Any]:
        plugins: list[dict[str, Any]] = [
            {"name": "python", "path": "", "type": "language", "version": CLI_VERSION}
        ]
        for name, plugin_version in sorted(self.plugin_versions.items()):
            plugins.append(
                {"name": name, "path": "", "type": "resource", "version": plugin_version}
            )
        return {
            "time": now_rfc3339(),
            "magic": hashlib.sha256(f"v{CLI_VERSION}".encode()).hexdigest(),
            "version": f"v{CLI_VERSION}",
            "plugins": plugins,
        }

    def update_info(
        self, kind: str, start: float, succeeded: bool, changes: dict[str, int]
    ) -> dict[str, Any]:
        """History record of one update, with config secrets still encrypted."""
        return {
            "kind": kind,
            "startTime": int(start),
            "message": "",
            "environment": {"exec.kind": "cli", "engine": "control-plane-sandbox"},
            "config": self.stack_config.encrypted_view(),
            "result": "succeeded" if succeeded else "failed",
            "endTime": int(time.time()),
            "resourceChanges": changes,
        }
