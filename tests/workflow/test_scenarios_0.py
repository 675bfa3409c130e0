"""Scenario files of shard 0 (see scenario_shards.py)."""

from tests.workflow.scenario_shards import scenario_test

test_scenario_expectations_hold = scenario_test(0)
