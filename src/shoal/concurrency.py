"""Awaiting several coroutines at once, as if they were one call.

A task group guarantees that no task outlives the call (none keeps writing after it returned or
raised); these helpers unwrap its exception group, because callers handle the project's errors
(``LoadError``, ``CatalogUnavailableError`` …), not groups of them.
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
    and raise that error itself (noting how many others failed too)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        if len(failures.exceptions) > 1:
            first.add_note(f"({len(failures.exceptions) - 1} concurrent task(s) failed too)")
        raise first from first.__cause__
    return [task.result() for task in tasks]


async def both(first: Coroutine[Any, Any, _A], second: Coroutine[Any, Any, _B]) -> tuple[_A, _B]:
    """:func:`all_or_first_error` of two coroutines of different result types."""
    results: list[Any] = await all_or_first_error([first, second])
    return results[0], results[1]
