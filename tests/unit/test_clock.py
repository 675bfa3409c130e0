"""The virtual clock: sleeps cost no wall time, and wait for busy actors."""

from __future__ import annotations

import threading
import time

import pytest

from control_plane.sandbox.clock import VirtualClock


def test_sleep_without_actors_returns_at_once() -> None:
    clock = VirtualClock(start=0)
    started = time.monotonic()

    clock.sleep(3600)

    assert clock.now() == 3600
    assert time.monotonic() - started < 1


def test_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock().advance(-1)


def test_sleeper_waits_while_another_actor_is_busy() -> None:
    clock = VirtualClock(start=0)
    clock.add_actor()
    clock.add_actor()
    woke_at: list[float] = []

    def sleeper() -> None:
        clock.sleep(30)
        woke_at.append(clock.now())
        clock.remove_actor()

    thread = threading.Thread(target=sleeper)
    thread.start()
    time.sleep(0.3)
    busy_time = clock.now()
    clock.advance(10)  # the busy actor's own work, e.g. a build
    clock.remove_actor()  # the busy actor ends
    thread.join(timeout=5)

    assert busy_time == 0
    assert woke_at == [30]


def test_earliest_sleeper_wakes_first() -> None:
    clock = VirtualClock(start=0)
    order: list[tuple[str, float]] = []
    for _ in range(2):
        clock.add_actor()

    def sleeper(name: str, seconds: float) -> None:
        clock.sleep(seconds)
        order.append((name, clock.now()))
        clock.remove_actor()

    threads = [
        threading.Thread(target=sleeper, args=("late", 50)),
        threading.Thread(target=sleeper, args=("early", 20)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert order == [("early", 20), ("late", 50)]
