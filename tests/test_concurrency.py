"""Awaiting several coroutines as one call: results, the first error, and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from shoal.concurrency import all_or_first_error, both


async def fail_after(seconds: float, message: str = "child failed") -> None:
    await asyncio.sleep(seconds)
    raise ValueError(message)


async def value_after(seconds: float, value: int) -> int:
    await asyncio.sleep(seconds)
    return value


async def fail_when_cancelled() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise ValueError("second") from None


class Slow:
    """A child that winds down for a while when cancelled (closing a connection, say)."""

    def __init__(self) -> None:
        self.ended = False

    async def run(self) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            raise
        finally:
            self.ended = True


async def test_results_come_back_in_the_order_of_the_coroutines() -> None:
    assert await all_or_first_error([value_after(0.02, 1), value_after(0.0, 2)]) == [1, 2]
    assert await both(value_after(0.0, 1), value_after(0.01, 2)) == (1, 2)


async def test_the_first_error_is_raised_itself_once_the_others_ended() -> None:
    slow = Slow()
    with pytest.raises(ValueError, match="first") as raised:
        await all_or_first_error([fail_after(0.01, "first"), fail_when_cancelled()])
    assert raised.value.__notes__ == ["(1 concurrent task(s) failed too)"]
    with pytest.raises(ValueError, match="child failed"):
        await both(fail_after(0.01), slow.run())
    assert slow.ended
    # the caller is left as it was: not cancelling, and a later timeout still fires
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)


async def test_a_cancellation_of_the_caller_while_a_failed_call_winds_down_propagates() -> None:
    slow = Slow()
    call = asyncio.create_task(both(fail_after(0.01), slow.run()))
    await asyncio.sleep(0.03)  # the child failed; the other is winding down
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert slow.ended


async def test_a_timeout_around_a_failing_call_fires() -> None:
    slow = Slow()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.03):
            await both(fail_after(0.01), slow.run())
    assert slow.ended


async def test_a_cancelled_call_cancels_every_child_and_waits_for_it() -> None:
    slow = Slow()
    call = asyncio.create_task(all_or_first_error([slow.run(), value_after(10, 1)]))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert slow.ended
