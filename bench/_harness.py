"""Machinery of the end-to-end benchmark: processes, RSS, triggers and what the integrations log.

Both frameworks are driven and observed the same way:

* the catalog is ``shoal serve`` on a fresh SQLite data dir, in its own process;
* the integration is another process that reads ``{"persons": n, "generation": g}`` from a
  *control file* whenever a kind starts, so one long-running process serves every phase;
* a resync is triggered the Port way, ``PATCH /v1/integration/{id}`` with ``{}``;
* the integration process logs its catalog requests (:mod:`bench._reqlog`): the resync-state
  reports carry its own ``lastResyncStart`` / ``lastResyncEnd``, entity writes carry the run id.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from shoal.catalog.server import free_port
from shoal.integrations.fake import org_shape, person_present

IDENTIFIER = "fake-org"
"""The integration's identifier in the catalog (both frameworks)."""

TERMINAL = frozenset({"completed", "failed", "aborted"})


# --- processes and memory ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(child) for child in text.split())
    return found


def _status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int, *, reaped: bool) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime stime cutime cstime are fields 14-17 (1-based); [1:] starts at field 3
        used = int(fields[11]) + int(fields[12])
        return used + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return 0


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``, its reaped children and its live descendants."""
    total, stack = _cpu_ticks(pid, reaped=True), list(_children(pid))
    while stack:
        current = stack.pop()
        total += _cpu_ticks(current, reaped=False)
        stack.extend(_children(current))
    return total / _TICKS


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Ocean forks worker processes)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _status_kb(current, "VmRSS")
        stack.extend(_children(current))
    return total


class PeakRSS:
    """Peak resident memory of a process tree between :meth:`reset` and :meth:`peak_mb`.

    The kernel's own high-water mark (``VmHWM``, reset through ``/proc/PID/clear_refs``) is
    exact for the main process; a 20 ms sampler adds its children, if any.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, tree_rss_kb(self.pid))

    def reset(self) -> None:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self._peak = tree_rss_kb(self.pid)

    def peak_mb(self) -> float:
        hwm = _status_kb(self.pid, "VmHWM")
        return max(self._peak, hwm, tree_rss_kb(self.pid)) / 1024

    def close(self) -> None:
        self._stop.set()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the catalog -------------------------------------------------------------------------------


@dataclass
class Catalog:
    """``shoal serve`` on a fresh data dir, with an admin API client."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    rss: PeakRSS
    http: httpx.Client = field(init=False)
    credentials: dict[str, str] = field(init=False)

    @classmethod
    def start(
        cls, data_dir: Path, *, python: str = sys.executable, env: dict[str, str] | None = None
    ) -> Catalog:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = (data_dir.parent / f"{data_dir.name}-catalog.log").open("wb")
        process = subprocess.Popen(
            [python, "-m", "shoal.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                message = f"the catalog exited with {process.returncode}; see {log.name}"
                raise RuntimeError(message)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            if time.monotonic() > deadline:
                process.kill()
                message = "the catalog did not start within 60 s"
                raise RuntimeError(message)
            time.sleep(0.1)
        catalog = cls(data_dir, port, process, PeakRSS(process.pid))
        catalog.credentials = json.loads((data_dir / "admin-credentials.json").read_text())
        token = httpx.post(
            f"{catalog.url}/v1/auth/access_token",
            json={
                "clientId": catalog.credentials["clientId"],
                "clientSecret": catalog.credentials["clientSecret"],
            },
        ).json()["accessToken"]
        catalog.http = httpx.Client(
            base_url=catalog.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        return catalog

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def trigger(self) -> float:
        """PATCH the integration (a resync trigger); returns the time just before sending."""
        sent = time.time()
        self.http.patch(f"/v1/integration/{IDENTIFIER}", json={}).raise_for_status()
        return sent

    def integration_exists(self) -> bool:
        return self.http.get(f"/v1/integration/{IDENTIFIER}").status_code == 200

    def count(self, blueprint: str) -> int:
        """Entities of ``blueprint``, read straight from the SQLite file (WAL: a reader is fine)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.data_dir / 'shoal.db'}?mode=ro", uri=True)
        ) as db:
            row = db.execute(
                "SELECT count(*) FROM entities WHERE blueprint = ?", (blueprint,)
            ).fetchone()
            return int(row[0])

    def stop(self) -> None:
        self.rss.close()
        self.http.close()
        stop_process(self.process)


# --- what the integration process logs ---------------------------------------------------------


def _same_moment(value: str | None, moment: float) -> bool:
    stamp = _ts(value)
    return stamp is not None and abs(stamp - moment) < 0.001


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Run:
    """One resync as the integration reported it."""

    start: float
    end: float
    status: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


class RequestLog:
    """Reads the JSON-lines file :mod:`bench._reqlog` writes in the integration process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()
        self._records: list[dict[str, Any]] = []
        self._offset = 0
        self._partial = b""

    def records(self) -> list[dict[str, Any]]:
        """Every record so far (reads only what was appended since the last call)."""
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        self._records.extend(json.loads(line) for line in lines if line.strip())
        return self._records

    def run_started_after(self, moment: float) -> float | None:
        """``lastResyncStart`` of the first run the integration started after ``moment``."""
        for record in self.records():
            if record["k"] == "state" and record["status"] == "running":
                start = _ts(record["start"])
                if start is not None and start >= moment:
                    return start
        return None

    def run_after(self, moment: float) -> Run | None:
        """The first run started after ``moment``, once it has ended (a Shoal run that was
        aborted reports so in its own record only, not in the resync state)."""
        start: float | None = None
        for record in self.records():
            kind, status = record["k"], record.get("status")
            if start is None:
                if kind == "state" and status == "running":
                    begun = _ts(record["start"])
                    if begun is not None and begun >= moment:
                        start = begun
            elif (kind == "state" and status in TERMINAL) or (
                kind == "run" and status == "aborted" and _same_moment(record.get("start"), start)
            ):
                end = _ts(record["end"]) or record["s"]
                return Run(start, end, status)
        return None

    def aborted_after(self, moment: float) -> float | None:
        """When the integration says the run it aborted after ``moment`` stopped (Ocean reports
        it as resync state, Shoal in the aborted run's record)."""
        for record in self.records():
            kind, status = record["k"], record.get("status")
            if kind in ("state", "run") and status == "aborted" and record["s"] >= moment:
                return _ts(record["end"]) or record["s"]
        return None

    def writes(self) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["k"] == "write"]


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {timeout:.0f} s waiting for {what}"
            raise TimeoutError(message)
        time.sleep(interval)


def write_control(path: Path, *, persons: int, generation: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"persons": persons, "generation": generation}))
    tmp.replace(path)


# --- the workload ------------------------------------------------------------------------------


def expected_entities(persons: int, generation: int, seed: int = 0) -> tuple[int, int]:
    """(all entities, persons) the fake source serves in ``generation``."""
    shape = org_shape(persons)
    present = sum(1 for i in range(persons) if person_present(seed, i, generation))
    others = shape.departments + shape.offices + shape.teams + shape.projects
    return others + present, present


@dataclass
class Phase:
    """One measured resync."""

    name: str
    entities: int
    seconds: float
    status: str
    catalog_mb: float
    integration_mb: float
    catalog_cpu: float = 0.0
    integration_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.entities / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Latencies:
    trigger_ms: list[float] = field(default_factory=list)
    abort_ms: list[float] = field(default_factory=list)

    @staticmethod
    def p50(samples: Sequence[float]) -> float | None:
        return statistics.median(samples) if samples else None


class Integration:
    """An integration process (either framework) the benchmark controls and observes."""

    def __init__(
        self, process: subprocess.Popen[bytes], control: Path, log: RequestLog, name: str
    ) -> None:
        self.process = process
        self.control = control
        self.log = log
        self.name = name
        self.rss = PeakRSS(process.pid)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            message = f"the {self.name} integration exited with {self.process.returncode}"
            raise RuntimeError(message)

    def stop(self) -> None:
        self.rss.close()
        stop_process(self.process)


def run_phase(
    catalog: Catalog,
    integration: Integration,
    name: str,
    *,
    persons: int,
    generation: int,
    timeout: float,
) -> Phase:
    """Set the source's generation, trigger, wait for the run to end; check the catalog."""
    write_control(integration.control, persons=persons, generation=generation)
    entities, present = expected_entities(persons, generation)
    catalog.rss.reset()
    integration.rss.reset()
    cpu = (tree_cpu_seconds(catalog.process.pid), tree_cpu_seconds(integration.process.pid))
    sent = catalog.trigger()

    def ended() -> Run | None:
        integration.check_alive()
        return integration.log.run_after(sent)

    run = wait_for(ended, timeout, f"{integration.name} resync {name!r}", interval=0.05)
    phase = Phase(
        name,
        entities,
        run.seconds,
        run.status,
        catalog.rss.peak_mb(),
        integration.rss.peak_mb(),
        tree_cpu_seconds(catalog.process.pid) - cpu[0],
        tree_cpu_seconds(integration.process.pid) - cpu[1],
    )
    stored = catalog.count("fakePerson")
    if run.status != "completed" or stored != present:
        phase.status = f"{run.status}, {stored} of {present} persons stored"
    return phase


def measure_trigger(
    catalog: Catalog, integration: Integration, samples: int, *, persons: int, timeout: float
) -> list[float]:
    """PATCH → the integration's ``lastResyncStart``, with the integration idle each time."""
    write_control(integration.control, persons=persons, generation=0)
    latencies: list[float] = []
    for _ in range(samples):
        time.sleep(0.2)  # idle, and not in step with any poll interval
        sent = catalog.trigger()
        started = wait_for(
            lambda sent=sent: integration.log.run_started_after(sent), timeout, "a run to start"
        )
        latencies.append((started - sent) * 1000)
        wait_for(lambda sent=sent: integration.log.run_after(sent), timeout, "the run to end")
    return latencies


def measure_abort(
    catalog: Catalog,
    integration: Integration,
    samples: int,
    *,
    persons: int,
    write_for: float,
    timeout: float,
) -> list[float]:
    """PATCH during a run → the aborted run's last write request is over and it has stopped.

    Each sample triggers run A, lets it write for ``write_for`` seconds, then triggers again:
    the time until A reports itself aborted *and* none of A's write requests is still in
    flight (every request of A ended: answered or cancelled) is the abort latency. Every run
    sees a new generation of the source, so that it has entities to update, not only to confirm
    unchanged (an unchanged resync of 10,000 persons is over in ~0.3 s). A run that ends
    without being aborted (it finished before the trigger reached it) is not a sample.
    """
    generation = 2  # the phases before wrote generations 0 and 1
    write_control(integration.control, persons=persons, generation=generation)
    latencies: list[float] = []
    sent = catalog.trigger()
    attempts = 0
    while len(latencies) < samples:
        attempts += 1
        if attempts > 3 * samples:
            message = f"runs of {persons:,} persons end before {write_for} s of writes"
            raise RuntimeError(message)
        begun = sent
        wait_for(lambda b=begun: integration.log.run_started_after(b), timeout, "a run to start")
        # wait until the run is writing, then a little longer
        wait_for(
            lambda b=begun: next((w for w in integration.log.writes() if w["s"] >= b), None),
            timeout,
            "the run to write",
        )
        time.sleep(write_for)
        run_ids = {w["run"] for w in integration.log.writes() if w["s"] >= begun}
        generation += 1
        write_control(integration.control, persons=persons, generation=generation)
        sent = catalog.trigger()

        def outcome(b: float = begun, s: float = sent) -> tuple[str, float] | None:
            stopped = integration.log.aborted_after(s)
            if stopped is not None:
                return "aborted", stopped
            run = integration.log.run_after(b)
            if run is not None and run.status != "aborted":
                return "finished first", run.end  # no run to abort: the sample does not count
            return None

        what, stopped = wait_for(outcome, timeout, "the run to abort")
        wait_for(lambda s=sent: integration.log.run_started_after(s), timeout, "the next run")
        if what != "aborted":
            continue
        last_write = max(
            (w["e"] for w in integration.log.writes() if w["run"] in run_ids), default=sent
        )
        latencies.append((max(stopped, last_write) - sent) * 1000)
    wait_for(lambda: integration.log.run_after(sent), timeout, "the last run to end", 0.05)
    return latencies
