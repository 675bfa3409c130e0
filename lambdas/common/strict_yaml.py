"""YAML parsing that rejects a key repeated in one mapping.

PyYAML keeps the last of two equal keys without a word, so a duplicated environment or scenario
key would silently replace the first. Only the CLI and the CDK app read YAML; the Lambdas read
JSON, so PyYAML is imported here and nowhere in the task handlers.
"""

from __future__ import annotations

from typing import Any

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that raises on duplicate mapping keys; it builds only plain YAML types."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ValueError(f"key {key!r} appears twice (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def load_yaml(text: str) -> Any:
    """Parse YAML text; raise ValueError for a duplicate key, yaml.YAMLError for bad syntax."""
    return yaml.load(text, Loader=_UniqueKeyLoader)
