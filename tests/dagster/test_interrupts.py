"""Ctrl-C is never lost between or inside steps, whichever handler catches it."""

import os
import signal

from dagster._utils.interrupts import capture_interrupts

from pipelines.runner import noted_interrupts


def test_an_interrupt_dagsters_handler_swallows_inside_a_step_is_still_seen():
    # A step that finds its artifact ends at once: Dagster's capture handler sets its flag and clears it
    # on the way out without raising, so without the interpreter's own record the run went on to the end.
    with noted_interrupts() as interrupted:
        assert not interrupted()
        with capture_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
        assert interrupted()
        assert interrupted()  # once seen, it stays seen
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_between_steps_raises_and_is_noted():
    with noted_interrupts() as interrupted:
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass
        assert interrupted()


def test_an_interrupt_behind_many_other_signals_is_still_seen():
    # Every signal with a Python handler writes a byte to the pipe; a SIGINT behind more than one read's
    # worth of them was missed until the next check.
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    try:
        with noted_interrupts() as interrupted:
            for _ in range(5000):
                os.kill(os.getpid(), signal.SIGUSR1)
            with capture_interrupts():
                os.kill(os.getpid(), signal.SIGINT)
            assert interrupted()
    finally:
        signal.signal(signal.SIGUSR1, previous)
