"""Synthesize the CDK app and turn its template into concrete sandbox resources.

Synthesis is cached by a hash of every source it reads, so a fresh sandbox reuses the template
when nothing changed. Token resolution covers the intrinsic functions the control plane's
template uses: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select and Fn::Split. Anything else is
rejected by name rather than guessed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lambda_runtime import FunctionSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "EbControlPlane"
STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
SYNTH_INPUTS = ("app.py", "cdk.json", "environments.yaml", "control_plane", "lambdas", "infra")
SYNTH_SKIP_DIRS = {"__pycache__", "sandbox", ".venv", "venv"}


class TemplateError(RuntimeError):
    """The template cannot be synthesized or resolved."""


def source_hash(root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for entry in SYNTH_INPUTS:
        path = root / entry
        if path.is_file():
            files = [path]
        elif path.exists():
            files = sorted(path.rglob("*"))
        else:
            files = []
        for file in files:
            if not file.is_file() or SYNTH_SKIP_DIRS.intersection(file.relative_to(root).parts):
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def jsii_environment() -> dict[str, str]:
    """Silence jsii's Node end-of-life banner; it takes the Node major version to silence."""
    try:
        major = subprocess.run(
            ["node", "-p", "process.versions.node.split('.')[0]"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        major = "20"
    return {
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": major,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": major,
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": major,
    }


def synthesize(
    cache_dir: Path, root: Path = REPO_ROOT, *, context: dict[str, str] | None = None
) -> Path:
    """Return the path of the synthesized template, running `app.py` only when sources changed.

    `context` sets CDK context values, as `cdk synth -c key=value` does; each set of values has
    its own cache entry.
    """
    sources = source_hash(root)
    out_dir = cache_dir / f"cdk-{sources}{_context_suffix(context)}"
    template = out_dir / f"{STACK_NAME}.template.json"
    if template.exists():
        return template
    # Synthesize beside the cache entry and rename it into place, so concurrent sandboxes
    # never read a half-written template.
    staging = cache_dir / f"{out_dir.name}.partial-{os.getpid()}"
    env = {**os.environ, **jsii_environment(), "CDK_OUTDIR": str(staging)}
    if context:
        # The CDK CLI hands its context to the app in this variable.
        env["CDK_CONTEXT_JSON"] = json.dumps(context, sort_keys=True)
    env.setdefault("CDK_DEFAULT_REGION", "us-east-1")
    result = subprocess.run(
        [sys.executable, str(root / "app.py")], cwd=root, env=env, capture_output=True, text=True
    )
    shutil.rmtree(f"{staging}-staging", ignore_errors=True)
    if result.returncode != 0 or not (staging / template.name).exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise TemplateError(f"cdk synth failed:\n{result.stdout}\n{result.stderr}")
    try:
        staging.rename(out_dir)
    except OSError:  # another process renamed its copy first
        shutil.rmtree(staging, ignore_errors=True)
    # Entries of older sources go; those of the same sources with other context values stay.
    for stale in cache_dir.glob("cdk-*"):
        if not stale.name.startswith(f"cdk-{sources}") and ".partial-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return template


def _context_suffix(context: dict[str, str] | None) -> str:
    if not context:
        return ""
    encoded = json.dumps(context, sort_keys=True).encode()
    return f"-context-{hashlib.sha256(encoded).hexdigest()[:8]}"


@dataclass
class SandboxResources:
    """Concrete names of the template's resources inside the sandbox."""

    region: str
    account_id: str
    table_name: str
    bundle_bucket: str
    state_bucket: str
    topic_arn: str
    codebuild_project: str
    state_machine_name: str
    state_machine_role_arn: str
    definition: dict[str, Any]
    functions: dict[str, FunctionSpec]
    # Resolved properties of each AWS::Events::Rule, by logical id (see sandbox/events.py).
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The CodeBuild project's environment variables, as CodeBuild's API writes them:
    # {"name", "type", "value"}, where a PARAMETER_STORE value is the parameter's name.
    codebuild_environment: list[dict[str, str]] = field(default_factory=list)

    @property
    def state_machine_arn(self) -> str:
        return (
            f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{self.state_machine_name}"
        )


class _Resolver:
    def __init__(self, template: dict[str, Any], region: str, account_id: str) -> None:
        self.resources: dict[str, Any] = template["Resources"]
        self.region = region
        self.account_id = account_id

    def name(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"sandbox-{logical_id.lower()}"[:63]
        properties = self.resources[logical_id].get("Properties", {})
        if kind == STATE_MACHINE_TYPE and "StateMachineName" in properties:
            return str(self.resolve(properties["StateMachineName"]))
        return logical_id

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to unknown resource {logical_id}")
        if self.resources[logical_id]["Type"] in ("AWS::SNS::Topic", STATE_MACHINE_TYPE):
            return self.arn(logical_id)
        return self.name(logical_id)

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.name(logical_id)
        region, account = self.region, self.account_id
        arns = {
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::CodeBuild::Project": f"arn:aws:codebuild:{region}:{account}:project/{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            STATE_MACHINE_TYPE: f"arn:aws:states:{region}:{account}:stateMachine:{name}",
        }
        if kind not in arns:
            raise TemplateError(f"no sandbox ARN for {kind} ({logical_id})")
        return arns[kind]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument
            if attribute == "Arn":
                return self.arn(logical_id)
            return self.name(logical_id)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.resolve(part)) for part in parts)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            variables = {} if isinstance(argument, str) else self.resolve(argument[1])
            for key, item in variables.items():
                text = text.replace("${" + key + "}", str(item))
            for logical_id in [*self.resources, "AWS::Region", "AWS::AccountId"]:
                text = text.replace("${" + logical_id + "}", self.ref(logical_id))
            return text
        raise TemplateError(f"intrinsic function {function} is not supported by the sandbox")

    def single(self, kind: str) -> str:
        found = [key for key, resource in self.resources.items() if resource["Type"] == kind]
        if len(found) != 1:
            raise TemplateError(f"expected one {kind} in the template, found {len(found)}")
        return found[0]


def load_resources(template_path: Path, region: str, account_id: str) -> SandboxResources:
    template = json.loads(template_path.read_text(encoding="utf-8"))
    resolver = _Resolver(template, region, account_id)
    buckets = [key for key, r in resolver.resources.items() if r["Type"] == "AWS::S3::Bucket"]
    bundle = next(key for key in buckets if key.startswith("BundleBucket"))
    state = next(key for key in buckets if key.startswith("PulumiStateBucket"))
    machine_id = resolver.single("AWS::StepFunctions::StateMachine")
    machine = resolver.resources[machine_id]["Properties"]

    functions = {}
    for logical_id, resource in resolver.resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        variables = resolver.resolve(properties.get("Environment", {}).get("Variables", {}))
        functions[logical_id] = FunctionSpec(
            name=logical_id,
            handler=properties["Handler"],
            environment={key: str(item) for key, item in variables.items()},
            timeout_seconds=int(properties.get("Timeout", 3)),
        )
    rules = {
        logical_id: resolver.resolve(resource["Properties"])
        for logical_id, resource in resolver.resources.items()
        if resource["Type"] == "AWS::Events::Rule"
    }
    project_id = resolver.single("AWS::CodeBuild::Project")
    project_variables = resolver.resolve(
        resolver.resources[project_id]["Properties"]["Environment"].get("EnvironmentVariables", [])
    )
    return SandboxResources(
        region=region,
        account_id=account_id,
        table_name=resolver.name(resolver.single("AWS::DynamoDB::GlobalTable")),
        bundle_bucket=resolver.name(bundle),
        state_bucket=resolver.name(state),
        topic_arn=resolver.arn(resolver.single("AWS::SNS::Topic")),
        codebuild_project=resolver.name(project_id),
        # The template names the state machine, so task roles can refer to its executions.
        state_machine_name=str(resolver.resolve(machine.get("StateMachineName", machine_id))),
        state_machine_role_arn=resolver.arn(machine["RoleArn"]["Fn::GetAtt"][0]),
        definition=json.loads(resolver.resolve(machine["DefinitionString"])),
        functions=functions,
        rules=rules,
        codebuild_environment=[
            {
                "name": item["Name"],
                "type": item.get("Type", "PLAINTEXT"),
                "value": str(item["Value"]),
            }
            for item in project_variables
        ],
    )
