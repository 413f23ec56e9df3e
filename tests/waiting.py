"""Waiting for a condition in tests, never for a fixed time where a condition can be awaited."""

import time


def wait_for(predicate, timeout=15.0, step=0.05):
    """The first truthy value of `predicate()`, polled until `timeout`; AssertionError after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
