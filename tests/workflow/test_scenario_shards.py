"""Every scenario file runs in exactly one shard."""

from tests.workflow.scenario_shards import SCENARIOS, SHARDS, scenarios_of


def test_every_scenario_is_in_exactly_one_shard() -> None:
    assigned = [path for shard in range(SHARDS) for path in scenarios_of(shard)]

    assert sorted(assigned) == SCENARIOS
    assert len(set(assigned)) == len(SCENARIOS)
