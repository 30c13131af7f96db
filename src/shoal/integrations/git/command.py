"""Running the git CLI as an asyncio subprocess, streaming its output.

Every function runs ``git -C <repository> <args>`` with a fixed, neutral configuration (no
pager, colour, signatures or optional locks; ``GIT_DIR``-style variables of the calling
environment removed, so a hook or a shell inside another repository cannot redirect it) and
raises :class:`GitError` -- a :class:`~shoal.errors.SourceError` -- when git is missing or
exits with an unexpected status. Output is decoded as UTF-8 with replacement characters.

:func:`git_each` hands output records to a callback one at a time, so ``git log`` of a
repository with millions of commits streams in constant memory. It is a plain coroutine, not
an async generator, so the git process never outlives the call: when the call is cancelled
(an aborted resync) or the callback raises, git is killed and reaped before the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Final

from shoal.errors import SourceError

__all__ = ["GitError", "git_each", "git_output"]

_GIT: Final = "git"
_POSIX: Final = os.name == "posix"
_RECORD_LIMIT: Final = 4 * 1024 * 1024
"""Longest single output record accepted (a path, a log line)."""
_STDERR_KEPT: Final = 4096
_CONFIG: Final = (
    "-c", "color.ui=false",
    "-c", "core.quotepath=off",
    "-c", "log.showSignature=false",
    "-c", "i18n.logOutputEncoding=UTF-8",
    "--no-pager",
)  # fmt: skip
_LOCATION_VARIABLES: Final = frozenset(
    {
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_NAMESPACE",
        "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX",
    }
)  # fmt: skip


class GitError(SourceError):
    """git could not be run, or exited with a status the caller did not accept."""


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _LOCATION_VARIABLES}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def _describe(repository: Path, args: tuple[str, ...]) -> str:
    return f"git {' '.join(args)} in {repository}"


async def _start(repository: Path, args: tuple[str, ...]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            _GIT, "-C", str(repository), *_CONFIG, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_environment(), limit=_RECORD_LIMIT,
            start_new_session=_POSIX,
        )  # fmt: skip
    except FileNotFoundError:
        raise GitError("the git executable was not found on PATH") from None
    except OSError as exc:
        raise GitError(f"cannot run {_describe(repository, args)}: {exc}") from None


async def _drain(stream: asyncio.StreamReader | None, keep: int) -> bytes:
    """Read ``stream`` to its end (so the child never blocks on it), keeping the first bytes."""
    kept = b""
    if stream is None:
        return kept
    while chunk := await stream.read(65536):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return kept


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Kill ``process`` if it still runs, and wait for it and its pipes to close.

    On POSIX git runs in a session of its own and the whole process group is killed, so
    helpers git started (hooks, ``fsmonitor``, aliases) cannot keep the pipes open.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            if _POSIX:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    await asyncio.gather(_drain(process.stdout, 0), process.wait())


def _check(
    repository: Path, args: tuple[str, ...], code: int, stderr: bytes, ok: Collection[int]
) -> None:
    if code not in ok:
        detail = stderr.decode("utf-8", "replace").strip() or f"exit status {code}"
        raise GitError(f"{_describe(repository, args)} failed: {detail}")


async def git_each(
    repository: Path,
    *args: str,
    on_record: Callable[[str], object],
    separator: bytes = b"\n",
    ok: Collection[int] = (0,),
) -> int:
    """Run ``git -C repository args`` and call ``on_record`` with each output record.

    Records are the output split at ``separator`` (not included; a last record without one
    still counts); use ``separator=b"\\0"`` with git's ``-z`` options. Returns git's exit
    status. Raises :class:`GitError` when git exits with a status not in ``ok`` (after every
    record was handed over) or writes a record longer than 4 MiB.
    """
    process = await _start(repository, args)
    assert process.stdout is not None
    stderr = asyncio.ensure_future(_drain(process.stderr, _STDERR_KEPT))
    try:
        while True:
            try:
                record = await process.stdout.readuntil(separator)
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    on_record(end.partial.decode("utf-8", "replace"))
                break
            except asyncio.LimitOverrunError:
                message = f"{_describe(repository, args)} wrote a record over {_RECORD_LIMIT} bytes"
                raise GitError(message) from None
            on_record(record[: -len(separator)].decode("utf-8", "replace"))
        code = await process.wait()
        _check(repository, args, code, await stderr, ok)
        return code
    finally:
        await _reap(process)
        if not stderr.done():
            await stderr


async def git_output(
    repository: Path, *args: str, ok: Collection[int] = (0,), limit: int | None = None
) -> tuple[int, str]:
    """Run ``git -C repository args`` and return its exit status and its output.

    At most ``limit`` bytes of output are kept (all when ``None``); git is killed once that
    many were read, so reading the top of a large file costs no more than the top. Raises
    :class:`GitError` for an exit status not in ``ok`` (a process killed because of ``limit``
    is not a failure).
    """
    process = await _start(repository, args)
    assert process.stdout is not None
    stderr = asyncio.ensure_future(_drain(process.stderr, _STDERR_KEPT))
    try:
        if limit is None:
            output = await process.stdout.read()
        else:
            try:
                output = await process.stdout.readexactly(limit)
            except asyncio.IncompleteReadError as end:
                output = end.partial
            else:
                return 0, output.decode("utf-8", "replace")
        code = await process.wait()
        _check(repository, args, code, await stderr, ok)
        return code, output.decode("utf-8", "replace")
    finally:
        await _reap(process)
        if not stderr.done():
            await stderr
