"""The lease keeper renews on one thread per process, stops at exit, reports a lost lease, and works in a forked child."""

import os
import threading
import time

from jobs.lease_keeper import LeaseKeeper


def test_renews_every_interval_on_one_shared_thread_and_never_after_exit():
    calls: list[str] = []

    def renew(name: str):
        def inner() -> bool:
            calls.append(name)
            return True

        return inner

    with LeaseKeeper(renew("a"), 0.02) as a, LeaseKeeper(renew("b"), 0.02) as b:
        threads_during = {t.name for t in threading.enumerate()}
        time.sleep(0.2)
    at_exit = len(calls)
    time.sleep(0.1)
    assert calls.count("a") >= 3 and calls.count("b") >= 3
    assert len(calls) == at_exit  # no renewal after __exit__
    assert not a.lost and not b.lost
    assert sum(1 for t in threading.enumerate() if t.name == "lease-keeper") == 1
    assert "lease-keeper" in threads_during


def test_a_renewal_that_finds_the_lease_gone_or_fails_marks_it_lost_and_stops():
    held = {"n": 0}

    def renew_twice() -> bool:
        held["n"] += 1
        return held["n"] < 2

    def broken() -> bool:
        raise ConnectionError("redis down")

    with LeaseKeeper(renew_twice, 0.02) as gone, LeaseKeeper(broken, 0.02) as failed:
        time.sleep(0.2)
    assert gone.lost and held["n"] == 2  # stopped renewing once the lease was gone
    assert failed.lost


def test_a_forked_child_renews_on_its_own_thread():
    with LeaseKeeper(lambda: True, 0.02):
        time.sleep(0.05)  # the parent's renewal thread is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        calls = []
        with LeaseKeeper(lambda: calls.append(1) or True, 0.02) as keeper:
            time.sleep(0.2)
        os.write(write, b"%d %d" % (len(calls), keeper.lost))
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    renewals, lost = map(int, os.read(read, 64).split())
    assert status == 0 and renewals >= 3 and lost == 0
