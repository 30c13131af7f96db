"""The Port Ocean side of the benchmark: its own venv, the fake-org integration, the process.

``bench/.venv-ocean`` (Python >= 3.12, ``port-ocean[cli]`` at :data:`OCEAN_VERSION`) is built on
first use and reused while the stamp matches; it is separate from the compatibility suite's
``.venv-ocean``. The integration folder is assembled inside it on every run: the template in
``bench/ocean_fake/`` plus verbatim copies of Shoal's fake generator modules, mapping and
blueprints, and of :mod:`bench._reqlog`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench._harness import IDENTIFIER, Catalog, Integration, RequestLog, free_port, write_control

OCEAN_VERSION = "0.56.2"
"""The pinned port-ocean release the benchmark compares against."""

INTEGRATION_TYPE = "fake"
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shoal"
OCEAN_PINS = ROOT / "compat" / "ocean-constraints.txt"
"""Every dependency of port-ocean pinned (the compatibility suite's lock, same Ocean version)."""

# The generator modules and what they import, copied verbatim under the same package names.
_COPIED = (
    "errors.py",
    "types.py",
    "integrations/fake/generator.py",
    "integrations/fake/kinds.py",
    "integrations/fake/settings.py",
    "integrations/fake/source.py",
)
_PACKAGES = ("", "integrations", "integrations/fake")

_version_line: str | None = None

_PROBE = """
import importlib.metadata as m, json, platform
names = ("port-ocean", "httpx", "jq", "pydantic")
print(json.dumps([platform.python_version(), *(m.version(n) for n in names)]))
"""


class OceanUnavailable(Exception):  # noqa: N818 - a reason to skip, carried to the report
    """Ocean cannot run here (no Python >= 3.12, or its install failed)."""


def _pinned(name: str) -> str:
    """``name==version`` as Shoal's own lock (constraints.txt) pins it."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    return name


def _python_candidates(explicit: str | None) -> list[str]:
    candidates = [explicit] if explicit else []
    if os.environ.get("PYTHON_OCEAN"):
        candidates.append(os.environ["PYTHON_OCEAN"])
    candidates.append("python3.12")
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    candidates.append("python3.13")
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    return candidates


def find_python(explicit: str | None) -> str:
    """The first interpreter >= 3.12 that actually runs (pyenv shims may refuse to)."""
    for candidate in _python_candidates(explicit):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            check = subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                capture_output=True,
                timeout=30,
            )
            if check.returncode == 0:
                return candidate
    message = "no Python >= 3.12 found (pass --ocean-python or set PYTHON_OCEAN)"
    raise OceanUnavailable(message)


def ensure_venv(bench_dir: Path, python: str | None, say: Callable[[str], None]) -> Path:
    venv = bench_dir / ".venv-ocean"
    stamp = venv / f".installed-{OCEAN_VERSION}"
    if stamp.exists():
        return venv
    interpreter = find_python(python)
    say(f"building {venv} with {interpreter} (port-ocean[cli]=={OCEAN_VERSION})")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-c",
                str(OCEAN_PINS),
                f"port-ocean[cli]=={OCEAN_VERSION}",
                _pinned("orjson"),  # the fake generator's one dependency
            ],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        message = f"installing port-ocean {OCEAN_VERSION} failed: {exc}"
        raise OceanUnavailable(message) from None
    stamp.touch()
    return venv


def build_integration(bench_dir: Path, venv: Path) -> Path:
    target = venv / "fake-org-integration"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(bench_dir / "ocean_fake", target)
    shutil.copy(bench_dir / "_reqlog.py", target / "_reqlog.py")
    for package in _PACKAGES:
        folder = target / "shoal" / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    for module in _COPIED:
        shutil.copy(SRC / module, target / "shoal" / module)
    resources = target / ".port" / "resources"
    resources.mkdir(parents=True, exist_ok=True)
    fake = SRC / "integrations" / "fake"
    shutil.copy(fake / "port-app-config.yaml", resources / "port-app-config.yml")
    shutil.copy(fake / "blueprints.json", resources / "blueprints.json")
    return target


def prepare(
    bench_dir: Path, python: str | None, say: Callable[[str], None]
) -> Callable[[Catalog, Path], Integration]:
    """Build (or reuse) the venv and the integration; return a starter for :func:`bench_size`."""
    global _version_line
    venv = ensure_venv(bench_dir, python, say)
    folder = build_integration(bench_dir, venv)
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _PROBE], capture_output=True, text=True, check=False
    )
    with contextlib.suppress(ValueError, IndexError):
        py, ocean, httpx, jq, pydantic = json.loads(probe.stdout)
        _version_line = (
            f"Python {py}; port-ocean {ocean} (pinned), httpx {httpx}, jq {jq}, pydantic {pydantic}"
        )

    def start(catalog: Catalog, workdir: Path) -> Integration:
        control = workdir / "control.json"
        log = RequestLog(workdir / "requests.jsonl")
        write_control(control, persons=0, generation=0)
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(workdir)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "OCEAN__PORT__BASE_URL": catalog.url,
            "OCEAN__PORT__CLIENT_ID": catalog.credentials["clientId"],
            "OCEAN__PORT__CLIENT_SECRET": catalog.credentials["clientSecret"],
            "OCEAN__INTEGRATION__IDENTIFIER": IDENTIFIER,
            "OCEAN__INTEGRATION__TYPE": INTEGRATION_TYPE,
            # Ocean's fastest trigger delivery against a catalog: poll every second
            "OCEAN__EVENT_LISTENER": json.dumps(
                {"type": "POLLING", "interval": 1, "resync_on_start": False}
            ),
            "OCEAN__CACHING_STORAGE_MODE": "memory",
            "BENCH_CONTROL_FILE": str(control),
            "BENCH_REQUEST_LOG": str(log.path),
        }
        output = (workdir / "integration.log").open("wb")
        process = subprocess.Popen(
            [
                str(venv / "bin" / "python"),
                str(venv / "bin" / "ocean"),
                "sail",
                "--port",
                str(free_port()),
                "--log-level",
                "WARNING",
                ".",
            ],
            cwd=folder,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        return Integration(process, control, log, "Ocean")

    return start


def version_line() -> str | None:
    return _version_line


def notes(sizes: tuple[int, ...], ocean_sizes: tuple[int, ...]) -> list[str]:
    lines = [
        f"Ocean: unmodified port-ocean {OCEAN_VERSION} in its own venv (bench/.venv-ocean), "
        "running the same generator (copied verbatim), mapping and blueprints, against the same "
        "catalog build; its defaults (20 entities per bulk request, its process pool for jq), "
        "except the POLLING listener at its shortest interval (1 s; the default is 60 s) — "
        "Ocean has no push delivery.",
    ]
    skipped = [s for s in sizes if s not in ocean_sizes]
    if skipped:
        lines.append(
            "Ocean rows stop at "
            f"{max(ocean_sizes):,} persons: at its measured rate the three resyncs of "
            f"{', '.join(f'{s:,}' for s in skipped)} persons would take hours."
        )
    return lines
