"""Drives the local Pulumi engine in-process on a copy of infra/, for the engine's tests.

Both engine test modules use it: one against moto's server, one against the EB simulator.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from control_plane.sandbox.pulumi_engine.cli import main
from control_plane.sandbox.pulumi_engine.crypto import new_salt_state

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "sandbox-passphrase"
CHECKPOINT_KEY = ".pulumi/stacks/webapp/dev.json"


@functools.cache
def shared_salt() -> str:
    # Deriving a key costs 1,000,000 PBKDF2 rounds; the engine caches keys per process.
    return new_salt_state(PASSPHRASE)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def digest(self) -> dict[str, Any]:
        return json.loads(self.stdout)


class EngineDriver:
    """A copy of infra/ plus the environment that sends the engine to `endpoint`."""

    def __init__(
        self,
        endpoint: str,
        client: Callable[[str], Any],
        tmp_path: Path,
        *,
        ignore: Callable[[str, list[str]], set[str]],
    ) -> None:
        self.project_dir = tmp_path / "infra"
        shutil.copytree(REPO_ROOT / "infra", self.project_dir, ignore=ignore)
        self.set_stack_file("encryptionsalt", shared_salt())
        self.bucket = f"state-{uuid.uuid4().hex[:8]}"
        self.environ = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PULUMI_BACKEND_URL": f"s3://{self.bucket}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        }
        self.s3 = client("s3")
        self.eb = client("elasticbeanstalk")
        self.s3.create_bucket(Bucket=self.bucket)

    def run(self, *args: str, stdin: str = "", **environ: str) -> Result:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(
                [*args, "--cwd", str(self.project_dir)],
                {**self.environ, **environ},
                io.StringIO(stdin),
            )
        return Result(code, stdout.getvalue(), stderr.getvalue())

    def ok(self, *args: str, stdin: str = "", **environ: str) -> Result:
        result = self.run(*args, stdin=stdin, **environ)
        assert result.code == 0, f"pulumi {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def checkpoint(self) -> dict[str, Any]:
        return json.loads(self.read(CHECKPOINT_KEY))

    def write_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        body = json.dumps(checkpoint).encode()
        self.s3.put_object(Bucket=self.bucket, Key=CHECKPOINT_KEY, Body=body)

    def resources(self) -> dict[str, dict[str, Any]]:
        return {r["urn"]: r for r in self.checkpoint()["checkpoint"]["latest"]["resources"]}

    def set_stack_file(self, key: str, value: Any) -> None:
        """Set a top-level key of Pulumi.dev.yaml, such as encryptionsalt."""
        path = self.project_dir / "Pulumi.dev.yaml"
        data = yaml.safe_load(path.read_text())
        data[key] = value
        path.write_text(yaml.safe_dump(data))

    def set_config(self, key: str, value: Any) -> None:
        """Set a stack config key in Pulumi.dev.yaml."""
        path = self.project_dir / "Pulumi.dev.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"][key] = value
        path.write_text(yaml.safe_dump(data))
