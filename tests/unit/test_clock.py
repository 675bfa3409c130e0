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


def test_condition_ends_sleep_before_its_time() -> None:
    clock = VirtualClock(start=0)
    clock.add_actor()
    clock.add_actor()
    released = threading.Event()
    ended: list[tuple[bool, float]] = []

    def waiter() -> None:
        ended.append((clock.sleep(300, until=released.is_set), clock.now()))
        clock.remove_actor()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    clock.advance(40)  # the other actor's work
    released.set()
    clock.wake_sleepers()
    thread.join(timeout=5)
    clock.remove_actor()

    assert ended == [(True, 40)]


def test_sleeper_whose_condition_holds_counts_as_awake() -> None:
    clock = VirtualClock(start=0)
    clock.add_actor()
    clock.add_actor()
    released = threading.Event()
    woke_at: list[float] = []
    resume = threading.Event()

    def waiter() -> None:
        clock.sleep(300, until=released.is_set)
        resume.wait(timeout=5)  # slow to resume, while it counts as awake
        woke_at.append(clock.now())
        clock.remove_actor()

    def sleeper() -> None:
        clock.sleep(30)
        woke_at.append(clock.now())
        clock.remove_actor()

    released.set()
    threads = [threading.Thread(target=waiter), threading.Thread(target=sleeper)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    time_while_waiter_resumes = clock.now()
    resume.set()
    for thread in threads:
        thread.join(timeout=5)

    assert time_while_waiter_resumes == 0
    assert woke_at == [0, 30]


def test_timers_alone_never_move_time() -> None:
    clock = VirtualClock(start=0)
    clock.add_actor()
    ended: list[float] = []
    stop = threading.Event()

    def timer() -> None:
        clock.sleep(60, until=stop.is_set, timer=True)
        ended.append(clock.now())
        clock.remove_actor()

    thread = threading.Thread(target=timer)
    thread.start()
    time.sleep(0.7)
    stop.set()
    clock.wake_sleepers()
    thread.join(timeout=5)

    assert ended == [0]


def test_timer_wakes_at_its_time_while_another_sleeps() -> None:
    clock = VirtualClock(start=0)
    clock.add_actor()
    clock.add_actor()
    order: list[tuple[str, float]] = []

    def sleeper(name: str, seconds: float, timer: bool) -> None:
        clock.sleep(seconds, timer=timer)
        order.append((name, clock.now()))
        clock.remove_actor()

    threads = [
        threading.Thread(target=sleeper, args=("execution", 600, False)),
        threading.Thread(target=sleeper, args=("timer", 120, True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert order == [("timer", 120), ("execution", 600)]
