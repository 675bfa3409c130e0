"""Server side of Elastic Beanstalk's Query protocol, driven by botocore's service model.

botocore serializes requests and parses responses for clients. The simulator needs the
reverse: it turns the flattened form fields of a request (``EnvironmentNames.member.1``,
``OptionSettings.member.2.Namespace``) into the structured input that the model describes,
and it turns a result dict into the XML document that botocore's ``QueryParser`` reads.
"""

from __future__ import annotations

import base64
import binascii
import functools
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp

from control_plane.sandbox.eb.errors import (
    ElasticBeanstalkError,
    invalid_parameter,
    missing_parameter,
)

XML_NAMESPACE = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"


@functools.cache
def service_model() -> ServiceModel:
    """Load the ``elasticbeanstalk`` model bundled with the installed botocore."""
    return botocore.session.get_session().get_service_model("elasticbeanstalk")


def operation_model(action: str) -> OperationModel | None:
    """Return the model of ``action``, or None when Elastic Beanstalk has no such operation."""
    model = service_model()
    if action not in model.operation_names:
        return None
    return model.operation_model(action)


# Request parsing


def parse_request(operation: OperationModel, params: Mapping[str, str]) -> dict[str, Any]:
    """Convert the decoded form fields of a request into the operation's structured input.

    Raises ElasticBeanstalkError (MissingRequiredParameter or InvalidParameterValue) when a
    required member is absent or a value does not convert to the member's type.
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    return _parse_structure(shape, params, "", top_level=True) or {}


def _parse_value(shape: Shape, params: Mapping[str, str], key: str) -> Any:
    if shape.type_name == "structure":
        return _parse_structure(shape, params, key, top_level=False)
    if shape.type_name == "list":
        return _parse_list(shape, params, key)
    if shape.type_name == "map":
        return _parse_map(shape, params, key)
    if key not in params:
        return None
    return _parse_scalar(shape, params[key], key)


def _parse_structure(
    shape: Shape, params: Mapping[str, str], key: str, *, top_level: bool
) -> dict[str, Any] | None:
    prefix = f"{key}." if key else ""
    parsed: dict[str, Any] = {}
    for member_name, member_shape in shape.members.items():
        member_key = prefix + member_shape.serialization.get("name", member_name)
        value = _parse_value(member_shape, params, member_key)
        if value is not None:
            parsed[member_name] = value
    if not parsed and not top_level:
        return None
    for required in shape.required_members:
        if required not in parsed:
            raise missing_parameter(f"The request must contain the parameter {prefix}{required}.")
    return parsed


def _parse_list(shape: Shape, params: Mapping[str, str], key: str) -> list[Any] | None:
    # botocore sends an empty list as the bare key with an empty value.
    if params.get(key) == "":
        return []
    member_shape = shape.member
    if shape.serialization.get("flattened"):
        element_prefix = key
        if member_shape.serialization.get("name"):
            element_prefix = ".".join([*key.split(".")[:-1], member_shape.serialization["name"]])
    else:
        element_prefix = f"{key}.{member_shape.serialization.get('name', 'member')}"
    elements = []
    index = 1
    while True:
        element = _parse_value(member_shape, params, f"{element_prefix}.{index}")
        if element is None:
            break
        elements.append(element)
        index += 1
    return elements or None


def _parse_map(shape: Shape, params: Mapping[str, str], key: str) -> dict[str, Any] | None:
    entry_prefix = key if shape.serialization.get("flattened") else f"{key}.entry"
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    parsed = {}
    index = 1
    while f"{entry_prefix}.{index}.{key_name}" in params:
        entry_key = params[f"{entry_prefix}.{index}.{key_name}"]
        parsed[entry_key] = _parse_value(
            shape.value, params, f"{entry_prefix}.{index}.{value_name}"
        )
        index += 1
    return parsed or None


def _parse_scalar(shape: Shape, raw: str, key: str) -> Any:
    type_name = shape.type_name
    try:
        if type_name in ("integer", "long"):
            return int(raw)
        if type_name in ("float", "double"):
            return float(raw)
        if type_name == "boolean":
            return _parse_boolean(raw)
        if type_name == "timestamp":
            return parse_timestamp(raw)
        if type_name == "blob":
            return base64.b64decode(raw, validate=True)
    except (ValueError, OverflowError, binascii.Error) as error:
        raise invalid_parameter(
            f"Invalid value '{raw}' for parameter {key}: expected a {type_name}."
        ) from error
    return raw


def _parse_boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError(raw)
    return lowered == "true"


# Response serialization


def serialize_result(
    operation: OperationModel, result: Mapping[str, Any] | None, request_id: str
) -> str:
    """Render ``result`` as the ``<ActionResponse>`` document of a successful call.

    ``result`` uses the output shape's member names. Timestamps may be datetimes or epoch
    seconds. An unknown member raises ValueError, because it means the simulator built a
    result that the model cannot describe.
    """
    root = ET.Element(f"{operation.name}Response", xmlns=XML_NAMESPACE)
    output_shape = operation.output_shape
    if output_shape is not None:
        wrapper_name = output_shape.serialization.get("resultWrapper", f"{operation.name}Result")
        wrapper = ET.SubElement(root, wrapper_name)
        _serialize_members(wrapper, output_shape, result or {})
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = request_id
    return ET.tostring(root, encoding="unicode")


def serialize_error(error: ElasticBeanstalkError, request_id: str) -> str:
    """Render ``error`` as the ``<ErrorResponse>`` document that AWS Query APIs return."""
    root = ET.Element("ErrorResponse", xmlns=XML_NAMESPACE)
    details = ET.SubElement(root, "Error")
    ET.SubElement(details, "Type").text = "Sender" if error.sender_fault else "Receiver"
    ET.SubElement(details, "Code").text = error.code
    ET.SubElement(details, "Message").text = error.message
    ET.SubElement(root, "RequestId").text = request_id
    return ET.tostring(root, encoding="unicode")


def _serialize_members(parent: ET.Element, shape: Shape, values: Mapping[str, Any]) -> None:
    for member_name, value in values.items():
        if value is None:
            continue
        member_shape = shape.members.get(member_name)
        if member_shape is None:
            raise ValueError(f"{shape.name} has no member {member_name!r}")
        element_name = member_shape.serialization.get("name", member_name)
        _serialize_value(parent, element_name, member_shape, value)


def _serialize_value(parent: ET.Element, name: str, shape: Shape, value: Any) -> None:
    type_name = shape.type_name
    if type_name == "structure":
        _serialize_members(ET.SubElement(parent, name), shape, value)
    elif type_name == "list":
        if shape.serialization.get("flattened"):
            container = parent
            member_name = shape.member.serialization.get("name", name)
        else:
            container = ET.SubElement(parent, name)
            member_name = shape.member.serialization.get("name", "member")
        for item in value:
            _serialize_value(container, member_name, shape.member, item)
    elif type_name == "map":
        container = parent if shape.serialization.get("flattened") else ET.SubElement(parent, name)
        entry_name = name if shape.serialization.get("flattened") else "entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        for key, item in value.items():
            entry = ET.SubElement(container, entry_name)
            _serialize_value(entry, key_name, shape.key, key)
            _serialize_value(entry, value_name, shape.value, item)
    else:
        ET.SubElement(parent, name).text = _format_scalar(shape, value)


def _format_scalar(shape: Shape, value: Any) -> str:
    type_name = shape.type_name
    if type_name == "boolean":
        return "true" if value else "false"
    if type_name == "timestamp":
        return format_timestamp(value)
    if type_name == "blob":
        return base64.b64encode(value).decode("ascii")
    return str(value)


def format_timestamp(value: datetime | float) -> str:
    """Format a datetime or epoch seconds as ISO 8601 UTC with milliseconds, as AWS does."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, tz=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
