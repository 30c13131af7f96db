"""The fake-org workload as a Port Ocean integration (run by ``port-ocean``, not by Shoal).

The benchmark copies this folder next to verbatim copies of Shoal's fake generator
(``shoal/integrations/fake/{generator,kinds,settings,source}.py`` and the two small modules they
import) and of the fake integration's mapping and blueprints, so Ocean gets the same items,
pages, mapping and blueprints as Shoal. Like the Shoal side, every kind re-reads ``persons`` and
``generation`` from ``BENCH_CONTROL_FILE``; ``BENCH_REQUEST_LOG`` receives the request log.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _reqlog  # noqa: E402

_reqlog.install(os.environ["BENCH_REQUEST_LOG"])

from port_ocean.context.ocean import ocean  # noqa: E402

from shoal.integrations.fake.kinds import KINDS  # noqa: E402
from shoal.integrations.fake.settings import FakeSettings  # noqa: E402
from shoal.integrations.fake.source import fetch_pages  # noqa: E402

CONTROL = Path(os.environ["BENCH_CONTROL_FILE"])


def _settings() -> FakeSettings:
    return FakeSettings(**json.loads(CONTROL.read_text()))


async def resync(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    async for page in fetch_pages(_settings(), kind):
        yield page


for _kind in KINDS:
    ocean.on_resync(_kind)(resync)
