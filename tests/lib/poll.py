"""Waiting until something holds: the one polling loop the Python tests use.

    from poll import wait_for
    pod = wait_for(lambda: ready_pod(), timeout=30, what="the pod Ready")
"""

import time


def wait_for(pred, timeout=10.0, interval=0.05, what="condition", proc=None):
    """Poll pred() until it returns a truthy value, and return that value. An exception
    from pred counts as not yet (what is polled may not exist yet) and is named, as the
    last value, in the AssertionError raised after timeout seconds. proc: a process being
    waited on (alive(), name, log_tail(), as realk8s.Process has): RuntimeError with its
    log as soon as it has exited."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}\n"
                               f"{proc.log_tail()}")
        try:
            last = pred()
            if last:
                return last
        except Exception as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)
