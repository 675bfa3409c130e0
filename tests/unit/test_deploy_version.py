"""DeployVersion's checks before it updates the environment."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common.errors import BundleInvalid, EnvironmentBusy
from lambdas.deploy_version import require_processed


class VersionsOnly:
    """An EB client that knows one application version in the given processing status."""

    def __init__(self, status: str) -> None:
        self.status = status

    def describe_application_versions(self, **kwargs: Any) -> dict[str, Any]:
        label = kwargs["VersionLabels"][0]
        return {"ApplicationVersions": [{"VersionLabel": label, "Status": self.status}]}


@pytest.mark.parametrize("status", ["PROCESSED", "UNPROCESSED"])
def test_processed_or_unprocessed_version_can_be_deployed(status: str) -> None:
    require_processed(VersionsOnly(status), "webapp", "v2")


@pytest.mark.parametrize("status", ["PROCESSING", "BUILDING"])
def test_version_still_processing_is_retried(status: str) -> None:
    with pytest.raises(EnvironmentBusy, match=f"still processing version v2 \\({status}\\)"):
        require_processed(VersionsOnly(status), "webapp", "v2")


def test_version_eb_failed_to_process_is_an_invalid_bundle() -> None:
    with pytest.raises(BundleInvalid) as raised:
        require_processed(VersionsOnly("FAILED"), "webapp", "v2")

    assert "could not process version v2 of webapp" in str(raised.value)
    assert "under a new version label" in str(raised.value)
