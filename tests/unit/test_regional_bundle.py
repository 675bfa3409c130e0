"""Which earlier copy of a bundle DeployVersion reuses, and keys too long to copy."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common import regional_bundle
from lambdas.common.errors import BundleInvalid
from lambdas.common.regional_bundle import _is_copy_of, bundle_in_region

SOURCE = {"ContentLength": 2048, "ETag": '"5d41402abc4b2a76b9719d911017c592"'}
# An object uploaded in 2 parts: its ETag is not the MD5 of its content.
MULTIPART_SOURCE = {"ContentLength": 2048, "ETag": '"0c78aef83f66abc1fa1e8477f296d394-2"'}


def copy_of(source: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copy = {
        "ContentLength": source["ContentLength"],
        "ETag": '"9e107d9d372bb6826bd81d3542a419d6"',
        "Metadata": {"source-etag": source["ETag"].strip('"')},
    }
    copy.update(changes)
    return copy


def test_missing_copy_is_made() -> None:
    assert _is_copy_of(None, SOURCE) is False


def test_copy_recording_source_etag_is_reused() -> None:
    assert _is_copy_of(copy_of(MULTIPART_SOURCE), MULTIPART_SOURCE) is True


def test_object_with_same_etag_is_reused() -> None:
    existing = copy_of(SOURCE, ETag=SOURCE["ETag"], Metadata={})

    assert _is_copy_of(existing, SOURCE) is True


def test_copy_of_other_content_is_replaced() -> None:
    assert _is_copy_of(copy_of(SOURCE, Metadata={"source-etag": "other"}), SOURCE) is False


def test_copy_of_other_size_is_replaced() -> None:
    assert _is_copy_of(copy_of(SOURCE, ContentLength=1), SOURCE) is False


def test_key_too_long_for_region_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regional_bundle, "bucket_region", lambda bucket: "us-east-1")
    key = "bundles/prod/" + "a" * 1000 + ".zip"

    with pytest.raises(BundleInvalid) as raised:
        bundle_in_region(f"s3://bundles/{key}", "eu-west-1", "webapp-prod")

    assert "longer than S3's 1024 bytes" in str(raised.value)
    assert "upload the bundle under a shorter key" in str(raised.value)
