"""The environments file: any content loads or fails with SettingsError listing the problems.

The CDK app, the CLI and every Lambda load it, so a crash here would stop all of them with a
stack trace instead of naming the key to fix.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.common.settings import (
    EnvironmentSettings,
    Settings,
    SettingsError,
    load_settings,
    parse_settings,
    read_stack_config_keys,
)
from lambdas.common.strict_yaml import load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = load_yaml((REPO_ROOT / "environments.yaml").read_text(encoding="utf-8"))
ENVIRONMENT_KEYS = sorted(EnvironmentSettings.model_fields)

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=15,
)
# Secret declarations in every form the file accepts, and broken variants of them.
secret_sources = st.one_of(
    st.builds(lambda name: {"ssm": name}, text | st.just("/control-plane/x")),
    st.builds(
        lambda name, key: {"secretsmanager": name, "key": key},
        text | st.just("control-plane/x"),
        values,
    ),
    st.builds(lambda flag: {"stack_config": flag}, values),
    st.builds(
        lambda source, name: {"source": source, "name": name},
        st.sampled_from(["ssm", "secretsmanager", "stack_config", "vault"]) | text,
        values,
    ),
    values,
)
secrets = st.dictionaries(text | st.just("db:password"), secret_sources, max_size=4)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Start from the sample file and change a few keys of one environment."""
    document = copy.deepcopy(SAMPLE)
    environment = document["environments"][draw(st.sampled_from(sorted(document["environments"])))]
    for key in draw(st.lists(st.sampled_from(ENVIRONMENT_KEYS), max_size=3)):
        environment[key] = draw(secrets if key == "required_secrets" else values)
    if draw(st.booleans()):
        document["environments"][draw(text)] = draw(values)
    if draw(st.booleans()):
        document[draw(text)] = draw(values)
    return document


def check_loads_or_lists_problems(load: Any) -> None:
    try:
        loaded = load()
    except SettingsError as error:
        message = str(error)
        assert message
        assert "Traceback" not in message
    else:
        assert isinstance(loaded, Settings)


@settings(max_examples=250)
@given(document=values | near_valid_documents())
def test_any_document_loads_or_lists_problems(document: Any) -> None:
    check_loads_or_lists_problems(lambda: parse_settings(document, "environments.yaml"))


@settings(max_examples=150)
@given(
    content=st.binary(max_size=200) | text.map(str.encode),
    suffix=st.sampled_from([".yaml", ".json"]),
)
def test_any_file_content_loads_or_lists_problems(
    tmp_path_factory: Any, content: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("environments") / f"environments{suffix}"
    path.write_bytes(content)

    check_loads_or_lists_problems(lambda: load_settings(path))


@settings(max_examples=100)
@given(document=near_valid_documents(), suffix=st.sampled_from([".yaml", ".json"]))
def test_near_valid_files_load_or_list_problems(
    tmp_path_factory: Any, document: dict[str, Any], suffix: str
) -> None:
    path = tmp_path_factory.mktemp("environments") / f"environments{suffix}"
    path.write_text(json.dumps(document), encoding="utf-8")

    check_loads_or_lists_problems(lambda: load_settings(path))


@settings(max_examples=100)
@given(content=st.binary(max_size=200) | values.map(json.dumps).map(str.encode))
def test_any_stack_settings_file_read_or_named(tmp_path_factory: Any, content: bytes) -> None:
    infra = tmp_path_factory.mktemp("infra")
    (infra / "Pulumi.qa.yaml").write_bytes(content)

    try:
        keys = read_stack_config_keys(infra)
    except SettingsError as error:
        assert "Pulumi.qa.yaml" in str(error)
    else:
        assert set(keys) == {"qa"}
        assert set(keys["qa"].values()) <= {"secure", "plain"}


def test_sample_file_loads() -> None:
    assert isinstance(parse_settings(SAMPLE, "environments.yaml"), Settings)
