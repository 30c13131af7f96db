"""Awaiting several coroutines at once, as if they were one call.

No task outlives the call (none keeps writing after it returned or raised), and the caller
gets the project's own errors (``LoadError``, ``CatalogUnavailableError`` …), not groups of
them. The tasks are awaited here rather than in an ``asyncio.TaskGroup``: on Python 3.11 a task
group whose child failed drops a cancellation of its caller that arrives while the other
children wind down (the caller would see the child's error instead of being aborted, and
``asyncio.timeout`` would not fire), and leaves the caller's ``cancelling()`` count raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["all_or_first_error", "both"]

_T = TypeVar("_T")
_A = TypeVar("_A")
_B = TypeVar("_B")


async def all_or_first_error(coroutines: Iterable[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run concurrently and return the results in order; on the first failure cancel the rest
    and raise that error itself (noting how many others failed too). A cancellation of the
    caller cancels them all and propagates once they have ended."""
    finished: list[asyncio.Task[_T]] = []
    tasks: list[asyncio.Task[_T]] = []
    cancelled: asyncio.CancelledError | None = None
    try:
        for coroutine in coroutines:
            task = asyncio.create_task(coroutine)
            task.add_done_callback(finished.append)
            tasks.append(task)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError as exc:
        cancelled = exc
    finally:
        cancelled = await _cancel_and_wait(tasks) or cancelled
    if cancelled is not None:
        raise cancelled
    in_order = finished + [task for task in tasks if task not in finished]
    failures = [task.exception() for task in in_order if not task.cancelled()]
    errors = [failure for failure in failures if failure is not None]
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first.add_note(f"({len(errors) - 1} concurrent task(s) failed too)")
        raise first
    return [task.result() for task in tasks]


async def _cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> asyncio.CancelledError | None:
    """Cancel the tasks not done and wait until every one has ended, even if the caller is
    cancelled meanwhile; returns that cancellation (to be raised once they have ended)."""
    cancelled: asyncio.CancelledError | None = None
    for task in tasks:
        if not task.done():
            task.cancel()
    while pending := [task for task in tasks if not task.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    return cancelled


async def both(first: Coroutine[Any, Any, _A], second: Coroutine[Any, Any, _B]) -> tuple[_A, _B]:
    """:func:`all_or_first_error` of two coroutines of different result types."""
    results: list[Any] = await all_or_first_error([first, second])
    return results[0], results[1]
