"""Fuzz the entity and integration routes with hypothesis.

Properties, for every request thrown at the catalog:

- never a 5xx;
- every error is Port's JSON body ``{"ok": false, "error": str, "message": str}`` with a 4xx
  status (Ocean calls ``response.json()`` on errors; anything else crashes it);
- a bulk upsert is never half-written: every index is reported exactly once, afterwards exactly
  the entities in ``entities[]`` changed (plus bare relation targets with
  ``create_missing_related_entities=true``), and those only in ``errors[]`` are absent or
  unchanged;
- a refused write changes nothing, and the integration record stays readable and Ocean-shaped.

The catalog runs once per engine in a background thread with its own event loop, so hypothesis
drives a plain synchronous httpx client. SQLite gets most examples, PostgreSQL a quarter.
Examples are derandomized and no example database is kept: CI sees the same cases every run.
``test_known_nasty_request`` pins the concrete requests that broke the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from tests.conftest import _create_postgres_database, _drop_postgres_database, admin_credentials

SVC = "fz_svc"
TEAM = "fz_team"
INTEGRATION = "fz-int"
MAX_BODY = 1024 * 1024
MAX_BULK = 40
REL_TARGET = {"owner": TEAM, "deps": SVC}
AGENT = "port-ocean/fuzz/1.0.0/fz-int/exporter"
SQLITE_SCALE, POSTGRES_SCALE = 1.0, 0.25

# failing examples may hold 100 kB strings and 1 MiB bodies; printing them is fine
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

Params = list[tuple[str, str]]
Key = tuple[str, str]
Snapshot = dict[Key, dict[str, Any]]

# --- values -------------------------------------------------------------------------------------


class Raw:
    """JSON text spliced into a body as is: nesting deeper than Python's encoder goes."""

    def __init__(self, text: str, label: str) -> None:
        self.text = text
        self.label = label

    def __repr__(self) -> str:
        return f"Raw({self.label})"


def deep_array(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth, f"[]*{depth}")


def deep_object(depth: int) -> Raw:
    return Raw('{"a":' * depth + "1" + "}" * depth, f"{{}}*{depth}")


def deep_query(depth: int) -> Raw:
    rule = '{"property":"$title","operator":"=","value":"x"}'
    return Raw('{"combinator":"and","rules":[' * depth + rule + "]}" * depth, f"query*{depth}")


DEEP = [deep_array(64), deep_object(255), deep_object(300), deep_array(1100), deep_query(300)]


def _same(value: Any) -> Any:
    return value


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``st.one_of`` with weights, the first option the most common.

    ``one_of`` drops repeats of one strategy object (hence the ``map`` copies), and hypothesis
    favours the first and last branch, so the first option also takes both ends.
    """
    (weight, first), *rest = options
    copies = [first.map(_same) for _ in range(weight)]
    middle = [strategy.map(_same) for weight, strategy in rest for _ in range(weight)]
    return st.one_of(*copies[: weight // 2], *middle, *copies[weight // 2 :])


def _long(
    text: str, sizes: tuple[int, ...] = (1000, 1001, 2000, 100_000)
) -> st.SearchStrategy[str]:
    """``text`` repeated to one of ``sizes`` characters (generated: kept out of reprs)."""
    return st.sampled_from(sizes).map(lambda n: (text * n)[:n])


NASTY_STRINGS = [
    "", " ", "NaN", "Infinity", "-Infinity", "1e308", "-0", "null", "true", "\x00", "a\x00b",
    "\n\t\r", "\x1b[31m", "\u202e", "\ufeff", "💥", "日本語", "%2F", "a%2Fb", "a/b",
    "a+b", "a b", "..", "%00", "'; DROP TABLE entities; --", "$identifier",
]  # fmt: skip
NASTY_NUMBERS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 1e308, -1e308, 5e-324, -0.0]
EXOTIC = [
    # where JSON parsers disagree: orjson refuses NaN, Infinity, 1e400 and lone surrogates and
    # reads 2**64 as a float; the stdlib (FastAPI bodies) takes them all
    "\ud800", float("nan"), float("inf"), float("-inf"), 2**64, -(2**63) - 1, 10**30, 10**400,
]  # fmt: skip
ODD_IDENTIFIERS = [
    "", " ", " lead", "trail ", "a/b", "/lead", "a//b", "a%2Fb", "a+b", "a b", "a\tb", "a\nb",
    "\x00", "a\x00b", "é", "日本", "💥", ".", "..", "?x=1", "#frag", "a\\b", "svc-a",
    "svc/with/slash", "svc with space", "svc+plus", "a:b@c=d",
]  # fmt: skip
POOL = ["svc-a", "svc-b", "svc/with/slash", "svc with space", "svc+plus", "a:b@c=d", "x" * 100]
TEAMS = ["team-a", "team-b", "team/c"]
FLAG_VALUES = ["true", "false", "", "TRUE", "1", "0", "yes", "no", "maybe", "💥", "true\x00"]
SEARCH_PROPERTIES = [
    "$identifier", "$blueprint", "$title", "$team", "$datasource", "$updatedAt", "$createdAt",
    "$nope", "name", "count", "tags", "",
]  # fmt: skip
SEARCH_OPERATORS = [
    "=", "!=", "in", "notIn", "contains", "containsAny", "beginsWith", "endsWith", "isEmpty",
    "between", "notBetween", ">", "<=", "~",
]  # fmt: skip
TIMESTAMPS = [
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456+00:00", "2026-01-01T00:00:00",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(max_size=20),
    st.sampled_from(NASTY_STRINGS),
    _long("é"),
    st.sampled_from(NASTY_NUMBERS),
)
plain_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
json_values = plain_values
rare = st.sampled_from(EXOTIC) | st.sampled_from(DEEP)
"""Values the parsers disagree on, or nested deeper than orjson writes (see ``spiked``)."""
odd_identifiers = weighted(
    (2, st.sampled_from(ODD_IDENTIFIERS)),
    (1, _long("a", (1000, 1001, 2000, 8000))),  # URLs hold 64 kB (httpx)
    (1, st.text(max_size=12)),
)
clean_characters = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
clean_text = st.text(clean_characters, max_size=20)
"""Text both engines store (PostgreSQL refuses NUL: see the nul-* cases)."""
timestamps = weighted((3, st.sampled_from(TIMESTAMPS[:2])), (1, st.sampled_from(TIMESTAMPS)))


def _encode(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (
            f"{_encode(str(k), ascii_only)}:{_encode(v, ascii_only)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


def encode(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON text; NaN, huge integers and lone surrogates are written as a sloppy client would."""
    return _encode(value, ascii_only).encode("utf-8", "surrogatepass")


# --- mutation: a wrong type (or nothing) at any key ---------------------------------------------


def _positions(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _positions(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _positions(child, (*prefix, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _replace(value: Any, path: tuple[Any, ...], new: Any, *, drop: bool = False) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if len(path) == 1 and drop:
        del copy[path[0]]
    else:
        copy[path[0]] = _replace(value[path[0]], path[1:], new, drop=drop)
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any], keys: tuple[str, ...] = ()) -> Any:
    """``base`` with up to two changes: a value replaced by any JSON, a key dropped or added."""
    value = draw(base)
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(list(_positions(value))))
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            value = _replace(value, path, draw(json_values))
        elif action == "drop" and path:
            value = _replace(value, path, None, drop=True)
        elif action == "add" and isinstance(_at(value, path), dict):
            key = draw(st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8))
            value = _replace(value, path, {**_at(value, path), key: draw(json_values)})
    return value


@st.composite
def spiked(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """``base`` with one value (at any depth) replaced by a ``rare`` one."""
    value = draw(base)
    return _replace(value, draw(st.sampled_from(list(_positions(value)))), draw(rare))


# --- bodies and query strings on the wire -------------------------------------------------------


class Payload:
    """A request body as sent: bytes and a Content-Type (None: no header)."""

    __slots__ = ("content", "content_type")

    def __init__(self, content: bytes, content_type: str | None = "application/json") -> None:
        self.content = content
        self.content_type = content_type

    def __repr__(self) -> str:
        shown = self.content[:160] + (b"..." if len(self.content) > 160 else b"")
        return f"Payload({shown!r}, {len(self.content)} bytes, {self.content_type!r})"


GARBAGE = [
    b"", b" ", b"{", b"}", b"null", b"[]", b"[{}]", b'"x"', b"0", b"NaN", b"Infinity", b"1e308",
    b"1e309", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b'{"a":1}{"b":2}', b'{"a":1,}',
    b"{'a': 1}", b'{"entities": [', b"\x00", b'{"\x00": 1}', b'{"a": "\xff"}', b"\xc3\x28",
    b'{"a": "\\ud800"}',
]  # fmt: skip
CONTENT_TYPES = [
    "application/json", "application/json", "application/json", None, "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data",
    "application/json; charset=latin-1", "application/vnd.api+json",
]  # fmt: skip
OVER_LIMIT = b'{"entities": [], "pad": "' + b"x" * (MAX_BODY + 16) + b'"}'


def garbage() -> st.SearchStrategy[Payload]:
    known = st.builds(Payload, st.sampled_from(GARBAGE), st.sampled_from(CONTENT_TYPES))
    random = st.builds(Payload, st.binary(max_size=48), st.sampled_from(CONTENT_TYPES))
    return weighted((3, known), (2, random), (1, st.just(Payload(OVER_LIMIT))))


def _truncated(value: Any, cut: int) -> Payload:
    content = encode(value)
    return Payload(content[: max(0, len(content) - cut)])


def payloads(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[Payload]:
    """Mostly well-formed JSON of ``structured``; sometimes truncated, sometimes garbage."""
    encoded = st.builds(
        lambda value, ascii_only: Payload(encode(value, ascii_only=ascii_only)),
        structured,
        st.booleans(),
    )
    truncated = st.builds(_truncated, structured, st.integers(1, 8))
    spiked_ = st.builds(lambda value: Payload(encode(value)), spiked(structured))
    return weighted((8, encoded), (1, spiked_), (1, truncated), (1, garbage()))


def query_params(keys: list[str]) -> st.SearchStrategy[Params]:
    """Known flags, mostly with values the catalog reads; odd values, repeats and unknown keys."""
    valid, odd = st.sampled_from(FLAG_VALUES[:8]), st.sampled_from(FLAG_VALUES[8:])
    known = st.tuples(
        st.sampled_from(keys), weighted((6, valid), (1, odd), (1, st.text(max_size=6)))
    )
    unknown = st.tuples(st.text(max_size=6), st.text(max_size=6))
    return st.lists(weighted((3, known), (1, unknown)), max_size=4)


def flag(params: Params, name: str) -> bool:
    """How the catalog reads a boolean query flag (the last value wins; absent is false)."""
    values = [value for key, value in params if key == name]
    return bool(values) and values[-1].lower() in ("true", "1", "yes")


def segment(text: str) -> str:
    """``text`` as one path segment (dot segments escaped: httpx would resolve them)."""
    return quote(text, safe="").replace(".", "%2E") if text in (".", "..") else quote(text, safe="")


user_agents = st.sampled_from(["shoal-fuzz", AGENT, AGENT, "", "u" * 3000, "port-ocean/a/b/c/d/e"])

# --- entity bodies ------------------------------------------------------------------------------

SVC_SCHEMA = {
    "name": {"type": "string"},
    "size": {"type": "number"},
    "count": {"type": "integer", "minimum": 0},
    "flag": {"type": "boolean"},
    "tier": {"type": "string", "enum": ["gold", "silver"]},
    "url": {"type": "string", "format": "url"},
    "meta": {"type": "object"},
    "tags": {"type": "array", "items": {"type": "string"}},
}
PROPERTY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": clean_text,
    "size": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1),
    "count": st.integers(0, 2**63 - 1),
    "flag": st.booleans(),
    "tier": st.sampled_from(["gold", "silver"]),
    "url": st.sampled_from(["https://example.com", "not a url"]),
    "meta": st.dictionaries(
        st.text(clean_characters, max_size=5),
        st.integers(-(2**63), 2**63 - 1) | st.text(clean_characters, max_size=5),
        max_size=3,
    ),
    "tags": st.lists(st.text(clean_characters, max_size=5), max_size=3),
}
ENTITY_KEYS = ("identifier", "title", "icon", "team", "blueprint", "properties", "relations")


RANGE = {"from": "2020-01-01T00:00:00Z", "to": "2099-01-01T00:00:00Z"}
SENSIBLE_RULES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("$identifier", "=", st.sampled_from(POOL)),
    ("$identifier", "in", st.lists(st.sampled_from(POOL), max_size=3)),
    ("$identifier", "notIn", st.lists(st.sampled_from(POOL), max_size=3)),
    ("$blueprint", "=", st.sampled_from([SVC, TEAM, "nope"])),
    (
        "$datasource",
        "contains",
        st.sampled_from(["port-ocean/fuzz/", "/fz-int/exporter", "%", "_"]),
    ),
    ("$datasource", "beginsWith", st.sampled_from(["port-ocean/", "%"])),
    ("$title", "endsWith", clean_text),
    ("$team", "containsAny", st.lists(st.sampled_from(TEAMS), max_size=2)),
    ("$updatedAt", "between", st.just(RANGE)),
    ("$updatedAt", "notBetween", st.just(RANGE)),
    ("$createdAt", ">", st.just("2020-01-01T00:00:00Z")),
    ("name", "isEmpty", st.none()),
    ("count", ">=", st.integers()),
    ("tags", "contains", st.text(max_size=3)),
]


def search_queries(depth: int = 2) -> st.SearchStrategy[Any]:
    """Mostly sensible queries (so some match), with junk rules mixed in."""
    sensible = st.sampled_from(SENSIBLE_RULES).flatmap(
        lambda spec: st.fixed_dictionaries(
            {"property": st.just(spec[0]), "operator": st.just(spec[1]), "value": spec[2]}
        )
    )
    relation = st.fixed_dictionaries(
        {"relation": st.sampled_from(["owner", "deps", "nope"]), "operator": st.just("="),
         "value": st.sampled_from(TEAMS + POOL)}
    )  # fmt: skip
    value = st.one_of(
        st.sampled_from(POOL), st.lists(st.sampled_from(POOL), max_size=3), json_values,
        st.just(RANGE), st.sampled_from(TIMESTAMPS),
    )  # fmt: skip
    junk = st.fixed_dictionaries(
        {
            "property": st.sampled_from(SEARCH_PROPERTIES),
            "operator": st.sampled_from(SEARCH_OPERATORS),
            "value": value,
        }
    )
    rule = weighted((3, sensible), (1, relation), (1, junk))
    children: st.SearchStrategy[Any] = rule if depth == 0 else rule | search_queries(depth - 1)
    return st.fixed_dictionaries(
        {
            "combinator": st.sampled_from(["and", "and", "and", "or", "or", "xor"]),
            "rules": st.lists(children, max_size=3),
        }
    )


@st.composite
def properties(draw: st.DrawFn, valid: bool) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(PROPERTY_VALUES)), max_size=4, unique=True))
    result = {name: draw(PROPERTY_VALUES[name]) for name in names}
    if not valid and draw(st.booleans()):
        result[draw(st.sampled_from([*PROPERTY_VALUES, "unknown"]))] = draw(json_values)
    return result


def relations(valid: bool) -> st.SearchStrategy[dict[str, Any]]:
    owner: st.SearchStrategy[Any] = st.one_of(st.none(), st.sampled_from(TEAMS))
    deps: st.SearchStrategy[Any] = st.lists(st.sampled_from(POOL), max_size=2)
    if valid:
        return st.fixed_dictionaries({}, optional={"owner": owner, "deps": deps})
    owner = st.one_of(owner, odd_identifiers, st.lists(st.sampled_from(TEAMS), max_size=2))
    owner = owner | search_queries(0)
    deps = st.one_of(deps, st.sampled_from(POOL), search_queries(0), st.none())
    nope = st.sampled_from(TEAMS)
    return st.fixed_dictionaries({}, optional={"owner": owner, "deps": deps, "nope": nope})


def entity_bodies(valid: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    identifier: st.SearchStrategy[Any] = st.sampled_from(POOL)
    teams = st.sampled_from(TEAMS)
    team: st.SearchStrategy[Any] = st.one_of(st.none(), teams, st.lists(teams, max_size=2))
    text: st.SearchStrategy[Any] = st.none() | clean_text
    optional = {"title": text, "icon": text, "team": team}
    optional |= {"properties": properties(valid), "relations": relations(valid)}
    if not valid:
        identifier = identifier | odd_identifiers | search_queries(1)
        text = text | st.sampled_from(NASTY_STRINGS) | _long("t")
        optional |= {"title": text, "icon": text, "team": team | search_queries(0)}
        optional |= {"blueprint": st.sampled_from([SVC, TEAM, "x"])}
    return st.fixed_dictionaries({"identifier": identifier}, optional=optional)


def any_entity() -> st.SearchStrategy[Any]:
    valid, odd = entity_bodies(valid=True), entity_bodies()
    return weighted((2, valid), (2, odd), (1, mutated(odd, ENTITY_KEYS)), (1, json_values))


def bulk_bodies() -> st.SearchStrategy[Any]:
    batch = weighted((8, st.lists(any_entity(), min_size=1, max_size=8)), (1, st.just([])))
    oversized = st.integers(MAX_BULK + 1, MAX_BULK + 3).map(
        lambda n: [{"identifier": f"many-{i}"} for i in range(n)]
    )
    body = st.fixed_dictionaries({"entities": weighted((12, batch), (1, oversized))})
    return weighted((6, body), (1, mutated(body, ("entities",))))


blueprint_segments = weighted(
    (6, st.just(SVC)), (1, st.sampled_from([TEAM, "nope", "a%2Fb", "", "💥", "x" * 200]))
)
seeds = weighted((4, st.lists(entity_bodies(valid=True), min_size=1, max_size=4)), (1, st.just([])))
WRITE_FLAGS = ["upsert", "merge", "create_missing_related_entities", "validation_only"]

# --- the catalog under test ---------------------------------------------------------------------


class _QuietAfterResponse(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" traceback.

    uvicorn logs it after the 500 is sent, so it is formatted in the server thread while pytest
    formats the failure in the main thread. Both parse source with ``ast`` (3.11's traceback
    carets), and CPython 3.11.7 shares the AST recursion counter between threads: pytest dies
    with an INTERNALERROR. The catalog already logged the same exception before answering.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (record.exc_info and message.startswith("Exception in ASGI application"))


class _ServedCatalog:
    """``running_catalog`` in a thread with its own event loop (module-scoped, sync tests)."""

    def __init__(self, settings: CatalogSettings) -> None:
        self._settings = settings
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuzz-catalog", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.running: RunningCatalog | None = None
        self._quiet = _QuietAfterResponse()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_catalog(self._settings) as running:
            self.running = running
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> RunningCatalog:
        logging.getLogger("uvicorn.error").addFilter(self._quiet)
        self._thread.start()
        self._ready.wait(60)
        if self.running is None:
            message = f"the catalog did not start: {self._error!r}"
            raise RuntimeError(message)
        return self.running

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        logging.getLogger("uvicorn.error").removeFilter(self._quiet)


def check(response: httpx.Response) -> Any:
    """What every response must be; returns the parsed body."""
    request = response.request
    where = f"{request.method} {request.url} body={request.content[:300]!r}"
    status = response.status_code
    assert status < 500, f"{where} -> {status}: {response.text[:500]}"
    if status in (307, 308) and request.url.path.endswith("/"):
        return {}  # Starlette's trailing-slash redirect (an empty identifier in the path)
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), f"{where} -> {status} {content_type}"
    body = response.json()
    assert isinstance(body, dict), f"{where} -> {body!r}"
    shown = f"{where} -> {status} {body!r}"[:2000]
    if status >= 400:
        assert status < 500, shown
        assert body.get("ok") is False, shown
        assert isinstance(body.get("error"), str), shown
        assert body["error"], shown
        assert isinstance(body.get("message"), str), shown
    else:
        assert 200 <= status < 300, shown
        assert body.get("ok") is True, shown
    return body


def references(entity: dict[str, Any]) -> set[Key]:
    """The entities ``entity`` relates to."""
    found: set[Key] = set()
    for name, value in (entity.get("relations") or {}).items():
        target = REL_TARGET.get(name)
        for identifier in value if isinstance(value, list) else [value]:
            if target is not None and isinstance(identifier, str):
                found.add((target, identifier))
    return found


def changes(before: Snapshot, after: Snapshot) -> set[Key]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


@dataclass
class Fuzz:
    client: httpx.Client
    engine: str
    scale: float

    def settings(self, examples: int) -> Callable[[Any], Any]:
        return settings(
            max_examples=max(5, int(examples * self.scale)),
            deadline=None,
            derandomize=True,
            database=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
            # no shrinking: every request is a server round trip, and the failure message
            # already names the exact request and response
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        )

    def send(
        self,
        method: str,
        path: str,
        payload: Payload | None = None,
        params: Params | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"User-Agent": AGENT, **(headers or {})}
        if payload is not None and payload.content_type is not None:
            all_headers["Content-Type"] = payload.content_type
        content = payload.content if payload is not None else None
        try:
            return self.client.request(
                method, path, content=content, params=params, headers=all_headers
            )
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # the connection was dropped after an earlier response: blame this request only
            # if a fresh connection fails too
            return self.client.request(
                method, path, content=content, params=params, headers=all_headers
            )

    def ok(self, method: str, path: str, body: Any = None, params: Params | None = None) -> Any:
        response = self.send(method, path, None if body is None else Payload(encode(body)), params)
        result = check(response)
        assert response.status_code in (200, 201), result
        return result

    def snapshot(self) -> Snapshot:
        rule = {"property": "$blueprint", "operator": "in", "value": [SVC, TEAM]}
        found = self.ok("POST", "/v1/entities/search", {"combinator": "and", "rules": [rule]})
        return {(e["blueprint"], e["identifier"]): e for e in found["entities"]}

    def reset(self, seed: list[dict[str, Any]]) -> Snapshot:
        """Empty the fuzz blueprints, then store ``seed`` (valid entities); the snapshot after."""
        for blueprint in (SVC, TEAM):
            doomed = [identifier for bp, identifier in self.snapshot() if bp == blueprint]
            path = f"/v1/blueprints/{blueprint}/bulk/entities/delete"
            for start in range(0, len(doomed), MAX_BULK):
                chunk = doomed[start : start + MAX_BULK]
                self.ok("POST", path, {"entities": chunk}, [("delete_dependents", "true")])
        if seed:
            params = [("upsert", "true"), ("create_missing_related_entities", "true")]
            result = self.ok(
                "POST", f"/v1/blueprints/{SVC}/entities/bulk", {"entities": seed}, params
            )
            assert not result["errors"], result
        return self.snapshot()

    def integration(self) -> dict[str, Any]:
        record: dict[str, Any] = self.ok("GET", f"/v1/integration/{INTEGRATION}")["integration"]
        record.pop("runSummary", None)
        return record


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzz(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzz]:
    engine: str = request.param
    tmp = tmp_path_factory.mktemp(f"fuzz-{engine}")
    if engine == "sqlite":
        url, scale = f"sqlite:///{tmp / 'catalog.db'}", SQLITE_SCALE
    else:
        url, scale = asyncio.run(_create_postgres_database()), POSTGRES_SCALE
    settings = CatalogSettings(
        port=0,
        data_dir=tmp / "data",
        database_url=url,
        max_body_bytes=MAX_BODY,
        max_bulk_entities=MAX_BULK,
        run_heartbeat_timeout=3600.0,
    )
    svc = {
        "identifier": SVC,
        "schema": {"properties": SVC_SCHEMA},
        "relations": {"owner": {"target": TEAM}, "deps": {"target": SVC, "many": True}},
    }
    try:
        with _ServedCatalog(settings) as running:
            creds = admin_credentials(running)
            with httpx.Client(base_url=running.url, timeout=60) as anonymous:
                token = anonymous.post("/v1/auth/access_token", json=creds).json()["accessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=running.url, timeout=60, headers=auth) as client:
                fz = Fuzz(client, engine, scale)
                fz.ok("POST", "/v1/blueprints", {"identifier": TEAM})
                fz.ok("POST", "/v1/blueprints", svc)
                fz.ok("POST", "/v1/integration", {"installationId": INTEGRATION})
                yield fz
    finally:
        if engine == "postgres":
            asyncio.run(_drop_postgres_database(url))


# --- entity writes ------------------------------------------------------------------------------


def test_bulk_upsert_is_never_half_written(fuzz: Fuzz) -> None:
    @fuzz.settings(160)
    @given(
        seed=seeds,
        blueprint=blueprint_segments,
        payload=payloads(bulk_bodies()),
        params=query_params(WRITE_FLAGS),
        agent=user_agents,
    )
    def run(seed: list[Any], blueprint: str, payload: Payload, params: Params, agent: str) -> None:
        before = fuzz.reset(seed)
        path = f"/v1/blueprints/{segment(blueprint)}/entities/bulk"
        response = fuzz.send("POST", path, payload, params, {"User-Agent": agent})
        body = check(response)
        after = fuzz.snapshot()
        changed = changes(before, after)
        if response.status_code >= 400:
            assert not changed, f"a refused bulk upsert changed {sorted(changed)}"
            return
        assert response.status_code == (207 if body["errors"] else 200)
        count = len(json.loads(payload.content)["entities"])
        indices = [e["index"] for e in body["entities"]] + [e["index"] for e in body["errors"]]
        assert sorted(indices) == list(range(count)), "every index is reported exactly once"
        for error in body["errors"]:
            assert isinstance(error["identifier"], str), error
            assert isinstance(error["error"], str), error
            assert isinstance(error["message"], str), error
            assert 400 <= error["statusCode"] < 500, error
        if flag(params, "validation_only"):
            assert not changed, f"validation_only wrote {sorted(changed)}"
            return
        reported = {(blueprint, e["identifier"]) for e in body["entities"]}
        for entity in body["entities"]:
            key = (blueprint, entity["identifier"])
            assert key in after, f"reported {key} is not stored"
            assert entity["created"] is (key not in before), entity
            assert after[key]["datasource"] == (agent[:1000] or after[key]["updatedBy"])
        unexpected = changed - reported
        if flag(params, "create_missing_related_entities"):
            targets = set().union(*(references(after[key]) for key in reported))
            unexpected -= {k for k in unexpected & targets if k not in before}
        assert not unexpected, f"stored but not reported in entities[]: {sorted(unexpected)}"

    run()


def test_single_upsert(fuzz: Fuzz) -> None:
    @fuzz.settings(100)
    @given(
        seed=seeds,
        blueprint=blueprint_segments,
        payload=payloads(any_entity()),
        params=query_params(WRITE_FLAGS),
    )
    def run(seed: list[Any], blueprint: str, payload: Payload, params: Params) -> None:
        before = fuzz.reset(seed)
        path = f"/v1/blueprints/{segment(blueprint)}/entities"
        response = fuzz.send("POST", path, payload, params)
        body = check(response)
        after = fuzz.snapshot()
        changed = changes(before, after)
        if response.status_code >= 400 or flag(params, "validation_only"):
            assert not changed, f"{response.status_code}: changed {sorted(changed)}"
            return
        key = (blueprint, body["entity"]["identifier"])
        assert response.status_code == (200 if key in before else 201)
        assert after[key] == body["entity"], "the returned entity is what is stored"
        unexpected = changed - {key}
        if flag(params, "create_missing_related_entities"):
            unexpected -= {k for k in unexpected & references(after[key]) if k not in before}
        assert not unexpected, f"stored beyond the entity: {sorted(unexpected)}"

    run()


def test_bulk_delete(fuzz: Fuzz) -> None:
    body = st.fixed_dictionaries(
        {"entities": st.lists(st.sampled_from(POOL + TEAMS) | odd_identifiers, max_size=5)}
    )

    @fuzz.settings(80)
    @given(
        seed=seeds,
        blueprint=blueprint_segments,
        payload=payloads(weighted((3, body), (1, mutated(body, ("entities",))))),
        params=query_params(["delete_dependents"]),
    )
    def run(seed: list[Any], blueprint: str, payload: Payload, params: Params) -> None:
        before = fuzz.reset(seed)
        path = f"/v1/blueprints/{segment(blueprint)}/bulk/entities/delete"
        response = fuzz.send("POST", path, payload, params)
        result = check(response)
        after = fuzz.snapshot()
        if response.status_code >= 400:
            assert not changes(before, after), "a refused delete changed the catalog"
            return
        requested = json.loads(payload.content)["entities"]
        expected = {identifier for identifier in requested if (blueprint, identifier) in before}
        assert sorted(set(result["deletedEntities"])) == sorted(expected)
        removed = before.keys() - after.keys()
        direct = {(blueprint, identifier) for identifier in result["deletedEntities"]}
        assert direct <= removed
        dependents = {(d["blueprint"], d["identifier"]) for d in result["deletedDependents"]}
        assert removed == direct | dependents and not direct & dependents
        if not flag(params, "delete_dependents"):
            assert removed == direct
        for key in removed - direct:
            assert references(before[key]) & removed, f"{key} deleted but depends on none"
        for key, entity in after.items():
            assert not references(entity) & removed, f"{key} still relates to a deleted entity"

    run()


# --- entity reads and single-entity paths -------------------------------------------------------


def _entity_path(blueprint: str, identifier: str, style: str) -> str:
    encoded = {
        "quote_plus": quote_plus(identifier, safe=""),  # what Ocean sends
        "quote": quote(identifier, safe=""),
        "slashes": quote(identifier, safe="/"),
        # as typed: "+", "%" and spaces go out raw (only what httpx would refuse is escaped)
        "raw": "".join(c if c.isprintable() and c not in "?#" else quote(c) for c in identifier),
    }[style]
    # a "." or ".." segment would be resolved by httpx (DELETE .../entities/.. is a blueprint)
    parts = [
        part.replace(".", "%2E") if part in (".", "..") else part for part in encoded.split("/")
    ]
    return f"/v1/blueprints/{blueprint}/entities/{'/'.join(parts)}"


def test_get_and_delete_entity_with_odd_identifiers(fuzz: Fuzz) -> None:
    @fuzz.settings(100)
    @given(
        seed=seeds,
        identifier=weighted((2, st.sampled_from(POOL)), (1, odd_identifiers)),
        style=st.sampled_from(["quote_plus", "quote_plus", "quote", "slashes", "raw"]),
        method=st.sampled_from(["GET", "GET", "DELETE"]),
        params=query_params(["delete_dependents"]),
    )
    def run(seed: list[Any], identifier: str, style: str, method: str, params: Params) -> None:
        before = fuzz.reset(seed)
        response = fuzz.send(method, _entity_path(SVC, identifier, style), params=params)
        body = check(response)
        if style == "raw" or identifier in (".", ".."):
            return  # httpx normalises dot segments; a raw "+" is a space to the server
        exists = (SVC, identifier) in before
        if response.status_code in (200, 404):
            assert (response.status_code == 200) == exists, f"{identifier!r} exists: {exists}"
        if method == "GET" and response.status_code == 200:
            assert body["entity"]["identifier"] == identifier
        if method == "DELETE" and response.status_code == 200:
            assert (SVC, identifier) not in fuzz.snapshot()

    run()


def test_search_and_datasource_entities(fuzz: Fuzz) -> None:
    prefixes = st.sampled_from(["port-ocean/fuzz/", "", "%", "_", "\x00"]) | st.text(max_size=5)
    suffixes = st.sampled_from(["/fz-int/exporter", "", "%"]) | st.text(max_size=5)
    cursors = weighted(
        (2, st.sampled_from(["", "WyJhIiwiYiJd"])),  # none, and the one after ("a", "b")
        (1, st.sampled_from(["bm9wZQ==", "!!", "W10=", "WzEsMl0="])),
    )
    limits = weighted(
        (3, st.sampled_from([1, 2, 50, 5000])),
        (1, st.sampled_from([0, -1, 10**6, 2.5, True, "5"])),
    )
    datasource = st.fixed_dictionaries(
        {"datasource_prefix": prefixes, "datasource_suffix": suffixes},
        optional={"limit": limits, "before": timestamps, "from": cursors},
    )
    search = st.one_of(
        search_queries(),
        mutated(search_queries()),
        st.fixed_dictionaries({"query": search_queries()}),
    )

    @fuzz.settings(100)
    @given(
        seed=seeds,
        search_payload=payloads(search),
        datasource_payload=payloads(weighted((2, datasource), (1, mutated(datasource)))),
        params=query_params(["include", "include", "exclude_calculated_properties", "limit"]),
    )
    def run(
        seed: list[Any], search_payload: Payload, datasource_payload: Payload, params: Params
    ) -> None:
        stored = fuzz.reset(seed)
        found = check(fuzz.send("POST", "/v1/entities/search", search_payload, params))
        for entity in found.get("entities", []):
            assert isinstance(entity, dict), entity
            if {"blueprint", "identifier"} <= entity.keys():
                assert (entity["blueprint"], entity["identifier"]) in stored, entity
        path = "/v1/blueprints/entities/datasource-entities"
        response = fuzz.send("POST", path, datasource_payload)
        page = check(response)
        if response.status_code != 200:
            return
        query = json.loads(datasource_payload.content.strip() or b"{}")  # empty reads as {}
        prefix, suffix = query.get("datasource_prefix", ""), query.get("datasource_suffix", "")
        for entity in page["entities"]:
            datasource = stored[(entity["blueprint"], entity["identifier"])]["datasource"]
            assert datasource.startswith(prefix), (prefix, datasource)
            assert datasource.endswith(suffix), (suffix, datasource)
        if page["next"] is not None:
            check(fuzz.send("POST", path, Payload(encode({**query, "from": page["next"]}))))

    run()


# --- integration routes -------------------------------------------------------------------------

fresh_ids = st.text("abcdefghij-_.", min_size=1, max_size=12)
INTEGRATION_FIELDS = {
    "installationAppType": st.text(max_size=8),
    "version": st.sampled_from(["1.0.0", ""]),
    "config": st.fixed_dictionaries({"resources": st.just([]), "enableMergeEntity": st.booleans()}),
    "changelogDestination": st.just({}),
    "createPortResourcesOrigin": st.sampled_from(["Default", "Port"]),
    "arePortResourcesInitialized": st.booleans(),
}
INTEGRATION_PATCH = st.fixed_dictionaries({}, optional=INTEGRATION_FIELDS)
INTEGRATION_BODY = st.fixed_dictionaries(
    {"installationId": weighted((3, fresh_ids), (1, odd_identifiers))},
    optional={
        "installationAppType": st.text(max_size=8),
        "version": st.sampled_from(["1.0.0", ""]),
        "config": st.fixed_dictionaries(
            {"resources": st.just([]), "enableMergeEntity": st.booleans()}
        ),
        "changelogDestination": st.just({}),
        "createPortResourcesOrigin": st.sampled_from(["Default", "Port"]),
    },
)
RESYNC_STATE = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["running", "completed", "failed", "aborted", "bogus", None, 1]),
        "lastResyncStart": timestamps | st.none(),
        "lastResyncEnd": timestamps | st.none(),
        "nextResync": timestamps | st.none(),
        "intervalInMinuets": st.sampled_from([None, 0, 60, 60, 1.5, -1, "60"]),
    },
)
RUN = st.fixed_dictionaries(
    {"startedAt": timestamps},
    optional={
        "status": st.sampled_from(["running", "completed", "failed", "aborted", "bogus"]),
        "trigger": st.sampled_from(["api", "cli", "start", ""]),
        "endedAt": timestamps | st.none(),
        "kinds": st.lists(st.fixed_dictionaries({"kind": st.text(max_size=5)}), max_size=2),
    },
)
any_object = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
CONFIG_BODY = st.fixed_dictionaries({"config": INTEGRATION_FIELDS["config"]})


def _ocean_shaped(record: dict[str, Any]) -> None:
    """What Ocean needs from ``GET /v1/integration/{id}`` (spec §11.1 #4, §11.2)."""
    assert isinstance(record["config"], dict)
    assert record["installationType"] == "OnPrem"
    assert isinstance(record["resyncState"], dict)
    assert isinstance(record["resyncState"]["updatedAt"], str)
    for attributes in ("logAttributes", "metricAttributes", "ingestAttributes"):
        assert isinstance(record[attributes]["ingestUrl"], str)


def test_integration_routes(fuzz: Fuzz) -> None:
    @fuzz.settings(160)
    @given(
        route=st.sampled_from(["create", "patch", "config", "resync-state", "run"]),
        target=weighted((6, st.just(INTEGRATION)), (1, st.just("nope")), (1, odd_identifiers)),
        run_id=st.one_of(st.sampled_from(["run-1", "run-2"]), fresh_ids, odd_identifiers),
        create=payloads(weighted((2, INTEGRATION_BODY), (1, mutated(INTEGRATION_BODY)))),
        patch=payloads(
            st.one_of(st.just({}), INTEGRATION_PATCH, mutated(INTEGRATION_PATCH), any_object)
        ),
        config=payloads(
            weighted(
                (2, CONFIG_BODY),
                (1, st.fixed_dictionaries({"config": any_object})),
                (1, mutated(CONFIG_BODY)),
            )
        ),
        state=payloads(weighted((2, RESYNC_STATE), (1, mutated(RESYNC_STATE)))),
        run_body=payloads(weighted((2, RUN), (1, mutated(RUN)))),
        skip_resync=st.sampled_from([None, "true", "TRUE", "false", "1", ""]),
    )
    def run(
        route: str,
        target: str,
        run_id: str,
        create: Payload,
        patch: Payload,
        config: Payload,
        state: Payload,
        run_body: Payload,
        skip_resync: str | None,
    ) -> None:
        before = fuzz.integration()
        base = f"/v1/integration/{segment(target)}"
        if route == "create":
            response = fuzz.send("POST", "/v1/integration", create)
        elif route == "patch":
            response = fuzz.send("PATCH", base, patch)
        elif route == "config":
            headers = {} if skip_resync is None else {"x-skip-resync": skip_resync}
            response = fuzz.send("PATCH", f"{base}/config", config, headers=headers)
        elif route == "resync-state":
            response = fuzz.send("PATCH", f"{base}/resync-state", state)
        else:
            response = fuzz.send("PUT", f"{base}/runs/{segment(run_id)}", run_body)
        body = check(response)
        after = fuzz.integration()
        _ocean_shaped(after)
        if response.status_code >= 400 and route != "create":
            assert after == before, "a refused integration write changed the record"
        if response.status_code < 400 and route == "create":
            created = segment(body["integration"]["identifier"])
            _ocean_shaped(fuzz.ok("GET", f"/v1/integration/{created}")["integration"])
        if response.status_code < 400 and route == "resync-state" and target == INTEGRATION:
            assert after["updatedAt"] == after["resyncState"]["updatedAt"]
        for path in ("", "/resync-request", "/runs", "/kind-metrics"):
            fuzz.ok("GET", f"/v1/integration/{INTEGRATION}{path}")
        fuzz.ok("GET", "/v1/integration")

    run()


# --- any route, any garbage ---------------------------------------------------------------------

ROUTES = [
    ("POST", f"/v1/blueprints/{SVC}/entities"),
    ("POST", f"/v1/blueprints/{SVC}/entities/bulk"),
    ("POST", f"/v1/blueprints/{SVC}/bulk/entities/delete"),
    ("POST", "/v1/entities/search"),
    ("POST", "/v1/blueprints/entities/datasource-entities"),
    ("POST", "/v1/integration"),
    ("PATCH", f"/v1/integration/{INTEGRATION}"),
    ("PATCH", f"/v1/integration/{INTEGRATION}/config"),
    ("PATCH", f"/v1/integration/{INTEGRATION}/resync-state"),
    ("PUT", f"/v1/integration/{INTEGRATION}/runs/run-garbage"),
]


def test_garbage_bodies_on_every_route(fuzz: Fuzz) -> None:
    @fuzz.settings(150)
    @given(route=st.sampled_from(ROUTES), payload=garbage() | payloads(json_values))
    def run(route: tuple[str, str], payload: Payload) -> None:
        check(fuzz.send(*route, payload))

    run()


# --- pinned cases: each of these broke the server -----------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    body: str | bytes | None = None
    status: int | None = None
    """The exact status expected, where more than "a 4xx JSON error or a 2xx" is known."""


def _bulk(*entities: str) -> str:
    return '{"entities": [' + ",".join(entities) + "]}"


def _rule(prop: str, operator: str, value: str) -> str:
    rule = f'{{"property": "{prop}", "operator": "{operator}", "value": {value}}}'
    return f'{{"combinator": "and", "rules": [{rule}]}}'


_DEEP = deep_object(300).text
_QUERY = deep_query(300).text
_BIG = "100000000000000000000000000000"
_RUN = '{"startedAt": "2026-01-01T00:00:00Z", "x": '
_INT = f"/v1/integration/{INTEGRATION}"
_NEW = "/v1/integration"
_BULK = f"/v1/blueprints/{SVC}/entities/bulk"
_ONE = f"/v1/blueprints/{SVC}/entities?upsert=true"
_DELETE = f"/v1/blueprints/{SVC}/bulk/entities/delete"
_SEARCH = "/v1/entities/search"
_DS = "/v1/blueprints/entities/datasource-entities"
_META = '{"identifier": "d", "properties": {"meta": '
_OWNER = '{"identifier": "svc-a", "relations": {"owner": '
_TITLE = _rule("$title", "=", '"x"')
_MANY = "[" + ",".join(f'"{i}"' for i in range(40_000)) + "]"

CASES = [
    # orjson refuses to serialise JSON nested deeper than 254, which both parsers accept
    Case("deep-property-bulk", "POST", _BULK, _bulk(_META + _DEEP + "}}")),
    Case("deep-property-single", "POST", _ONE, _META + _DEEP + "}}"),
    Case("deep-integration-patch", "PATCH", _INT, '{"x": ' + _DEEP + "}"),
    Case("deep-integration-config", "PATCH", f"{_INT}/config", '{"config": ' + _DEEP + "}"),
    Case("deep-integration-create", "POST", _NEW, '{"installationId": "d", "x": ' + _DEEP + "}"),
    Case("deep-resync-state", "PATCH", f"{_INT}/resync-state", '{"x": ' + _DEEP + "}"),
    Case("deep-run", "PUT", f"{_INT}/runs/deep", _RUN + _DEEP + "}"),
    # a search query nested 300 deep overflows the recursive evaluator
    Case("deep-search-query", "POST", _SEARCH, _QUERY),
    Case("deep-search-identifier", "POST", _BULK, _bulk('{"identifier": ' + _QUERY + "}")),
    Case("deep-search-relation", "POST", _BULK, _bulk(_OWNER + _QUERY + "}}")),
    # integration routes parse with the stdlib: integers past 64 bits and lone surrogates get
    # in, then the orjson column serialiser refuses them
    Case("bigint-integration-patch", "PATCH", _INT, '{"x": ' + _BIG + "}"),
    Case("bigint-integration-create", "POST", _NEW, '{"installationId": "b", "x": ' + _BIG + "}"),
    Case("bigint-integration-config", "PATCH", f"{_INT}/config", '{"config": {"x": ' + _BIG + "}}"),
    Case("bigint-resync-state", "PATCH", f"{_INT}/resync-state", '{"x": ' + _BIG + "}"),
    Case("bigint-run", "PUT", f"{_INT}/runs/bigint", _RUN + _BIG + "}"),
    Case("surrogate-integration-patch", "PATCH", _INT, '{"x": "\\ud800"}'),
    Case("surrogate-integration-create", "POST", _NEW, '{"installationId": "s", "x": "\\udfff"}'),
    Case("surrogate-run", "PUT", f"{_INT}/runs/sur", _RUN + '"\\ud800"}'),
    # SHOAL_MAX_BODY_BYTES holds on the entity routes only
    Case("over-limit-integration-patch", "PATCH", _INT, OVER_LIMIT, 413),
    Case("over-limit-integration-config", "PATCH", f"{_INT}/config", OVER_LIMIT, 413),
    Case("over-limit-integration-create", "POST", _NEW, OVER_LIMIT, 413),
    Case("over-limit-resync-state", "PATCH", f"{_INT}/resync-state", OVER_LIMIT, 413),
    Case("over-limit-run", "PUT", f"{_INT}/runs/big", OVER_LIMIT, 413),
    Case("over-limit-bulk", "POST", _BULK, OVER_LIMIT, 413),
    # an and-query the SQL prefilter cannot narrow calls and_() with no arguments: deprecated in
    # SQLAlchemy 2 (an error under pytest's warnings-as-errors); every search identifier and
    # search relation is such a query, since the blueprint rule is nested
    Case("empty-and-search", "POST", _SEARCH, '{"combinator": "and", "rules": []}'),
    Case("title-search", "POST", _SEARCH, _TITLE),
    Case("search-identifier", "POST", _BULK, _bulk('{"identifier": ' + _TITLE + "}")),
    Case("search-relation", "POST", _BULK, _bulk(_OWNER + _TITLE + "}}")),
    # `value in <frozenset>` with a JSON object or list value raises TypeError (unhashable)
    Case("unhashable-operator", "POST", _SEARCH, _rule("$title", "{}", "1").replace('"{}"', "{}")),
    Case("unhashable-operator-identifier", "POST", _BULK,
         _bulk('{"identifier": ' + _rule("$title", "[]", "1").replace('"[]"', "[]") + "}")),
    Case("unhashable-resync-status", "PATCH", f"{_INT}/resync-state", '{"status": {}}'),
    Case("unhashable-run-status", "PUT", f"{_INT}/runs/unhashable", _RUN + '1, "status": []}'),
    # PostgreSQL: identifiers may have 1001 characters, the columns hold 1000
    Case("identifier-1001", "POST", _BULK, _bulk('{"identifier": "' + "a" * 1001 + '"}')),
    Case("relation-target-1001", "POST", _BULK + "?create_missing_related_entities=true",
         _bulk(_OWNER + '"' + "t" * 1001 + '"}}')),
    # PostgreSQL: text may not hold NUL, and every parameter that can carry one broke
    Case("nul-title", "POST", _BULK, _bulk('{"identifier": "nul", "title": "a\\u0000b"}')),
    Case("nul-icon", "POST", _ONE, '{"identifier": "nul", "icon": "\\u0000"}'),
    Case("nul-relation", "POST", _BULK, _bulk(_OWNER + '"a\\u0000"}}')),
    Case("nul-get-entity", "GET", f"/v1/blueprints/{SVC}/entities/a%00b"),
    Case("nul-delete-entity", "DELETE", f"/v1/blueprints/{SVC}/entities/a%00b"),
    Case("nul-blueprint", "GET", "/v1/blueprints/a%00b/entities/x"),
    Case("nul-bulk-blueprint", "POST", "/v1/blueprints/a%00b/entities/bulk", _bulk()),
    Case("nul-get-integration", "GET", "/v1/integration/a%00b"),
    Case("nul-patch-integration", "PATCH", "/v1/integration/a%00b", "{}"),
    Case("nul-bulk-delete", "POST", _DELETE, '{"entities": ["\\u0000"]}'),
    Case("nul-search-datasource", "POST", _SEARCH, _rule("$datasource", "contains", '"\\u0000"')),
    Case("nul-search-identifier", "POST", _SEARCH, _rule("$identifier", "=", '"\\u0000"')),
    Case("nul-datasource-prefix", "POST", _DS, '{"datasource_prefix": "\\u0000"}'),
    # PostgreSQL (asyncpg) takes at most 32767 bind parameters per statement
    Case("search-in-40000", "POST", _SEARCH, _rule("$identifier", "in", _MANY)),
    # guards that always held
    Case("nested-1100", "POST", _BULK, "[" * 1100 + "]" * 1100, 400),
    Case("nan-property", "POST", _BULK, _bulk('{"identifier": "n", "title": NaN}'), 400),
    Case("float-overflow", "POST", _BULK, _bulk('{"identifier": "n", "title": 1e999}'), 400),
    Case("too-many-entities", "POST", _BULK, _bulk(*['{"identifier": "m"}'] * (MAX_BULK + 1)), 413),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_known_nasty_request(fuzz: Fuzz, case: Case) -> None:
    body = case.body.encode() if isinstance(case.body, str) else case.body
    payload = None if body is None else Payload(body)
    response = fuzz.send(case.method, case.path, payload)
    check(response)
    if case.status is not None:
        assert response.status_code == case.status, response.text[:300]
