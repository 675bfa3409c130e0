"""Hypothesis settings shared by the fuzz tests: deterministic, and quick enough for `make test`.

`derandomize=True` derives every example from the test itself, so a run is the same each time
and on every machine, and no example database is written.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("fuzz")
