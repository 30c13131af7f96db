"""Builder → Data Sources: the integration list, an integration's page and its two forms."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import orjson
import yaml
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from shoal.catalog.api.deps import Services, ServicesDep
from shoal.catalog.api.integrations import announce
from shoal.catalog.api.responses import JSONResponse
from shoal.catalog.auth import Action, authorize
from shoal.catalog.ui import present
from shoal.catalog.ui.render import PageRoute, redirect, render
from shoal.catalog.ui.session import PageSession, Session, SubmittedForm, submitted_form
from shoal.errors import ConfigError
from shoal.sync.mapping import parse_mapping_config
from shoal.types import JSONObject

__all__ = ["parse_config_text", "router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Form = Annotated[SubmittedForm, Depends(submitted_form)]

RUNS_SHOWN = 25
NOTICES = {
    "resync": "Resync requested. A running integration starts it at once.",
    "config": "Mapping config saved; a resync was requested.",
}
_OCEAN_METRIC_KEYS = frozenset({"eventId", "kindIdentifier", "kind", "syncState"})


def _page_url(identifier: str, notice: str | None = None) -> str:
    base = f"/ui/data-sources/{quote(identifier, safe='')}"
    return f"{base}?notice={notice}" if notice else base


@router.get("/ui/data-sources")
async def data_sources(
    request: Request, session: PageSession, services: ServicesDep, q: str = ""
) -> Response:
    authorize(session.principal, Action.READ)
    records = await services.store.integrations.list()
    needle = q.strip().lower()
    shown = [r for r in records if not needle or needle in _search_text(r)]
    return render(
        request,
        "data_sources.html",
        session,
        integrations=shown,
        total=len(records),
        q=q,
        search_text=_search_text,
    )


def _search_text(record: JSONObject) -> str:
    state = record.get("resyncState") or {}
    parts = (record.get("identifier"), record.get("installationAppType"), state.get("status"))
    return " ".join(str(part) for part in parts if part).lower()


@router.get("/ui/data-sources/{identifier}")
async def integration_page(
    request: Request, identifier: str, session: PageSession, services: ServicesDep
) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return await _integration_page(request, services, session, identifier, notice=notice)


@router.get("/ui/data-sources/{identifier}/history")
async def history_fragment(
    request: Request, identifier: str, session: PageSession, services: ServicesDep
) -> Response:
    """The run history and the starvation warning, re-rendered when a run changes."""
    authorize(session.principal, Action.READ, identifier)
    record = await services.store.integrations.get(identifier)
    runs = await services.store.integrations.list_runs(identifier, limit=RUNS_SHOWN)
    return render(request, "_history.html", session, **_history_context(record, runs))


def _history_context(record: JSONObject, runs: list[JSONObject]) -> dict[str, Any]:
    return {
        "integration": record,
        "runs": runs,
        "replaced": present.abort_links(runs),
        "warning": present.starvation_warning(record.get("runSummary")),
    }


async def _integration_page(
    request: Request,
    services: Services,
    session: Session,
    identifier: str,
    *,
    notice: str | None = None,
    config_error: str | None = None,
    config_text: str | None = None,
    status: int = 200,
) -> Response:
    authorize(session.principal, Action.READ, identifier)
    store = services.store.integrations
    record = await store.get(identifier)
    runs = await store.list_runs(identifier, limit=RUNS_SHOWN)
    metrics = await store.kind_metrics(identifier)
    return render(
        request,
        "integration.html",
        session,
        status=status,
        state=record.get("resyncState") or {},
        current=present.current_run(runs),
        expected=present.expected_counts(runs),
        kind_metrics=[_ocean_kind(body) for body in metrics],
        config=record.get("config") or {},
        config_yaml=present.config_text(record.get("config")),
        config_text=config_text,
        config_error=config_error,
        notice=notice,
        can_trigger=session.can(Action.TRIGGER),
        can_edit=session.can(Action.WRITE_INTEGRATION),
        **_history_context(record, runs),
    )


def _ocean_kind(body: JSONObject) -> dict[str, Any]:
    """One kind's metrics as Ocean reported them, flattened for a small table."""
    details = {k: v for k, v in body.items() if k not in _OCEAN_METRIC_KEYS}
    return {
        "kind": body.get("kindIdentifier") or body.get("kind") or "?",
        "state": body.get("syncState"),
        "metrics": present.flatten_metrics(details),
    }


@router.post("/ui/data-sources/{identifier}/resync")
async def resync(request: Request, identifier: str, form: Form, services: ServicesDep) -> Response:
    """The Resync button: a resync request with source ``ui``, as the API's PATCH records."""
    principal = form.session.principal
    authorize(principal, Action.TRIGGER, identifier)
    recorded = await services.store.integrations.request_resync(
        identifier, source="ui", actor=principal.client_id
    )
    await announce(services, recorded)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": True, "request": recorded.to_json()}, status_code=201)
    return redirect(_page_url(identifier, "resync"))


@router.post("/ui/data-sources/{identifier}/config")
async def save_config(
    request: Request, identifier: str, form: Form, services: ServicesDep
) -> Response:
    """Replace the mapping config (admins). A config that does not parse stores nothing."""
    principal = form.session.principal
    authorize(principal, Action.WRITE_INTEGRATION, identifier)
    text = form.text("config")
    try:
        config = parse_config_text(text)
    except ConfigError as exc:
        return await _integration_page(
            request,
            services,
            form.session,
            identifier,
            config_error=str(exc),
            config_text=text,
            status=422,
        )
    _, recorded = await services.store.integrations.replace_config(
        identifier, config, actor=principal.client_id, trigger=True
    )
    if recorded is not None:
        await announce(services, recorded)
    return redirect(_page_url(identifier, "config"))


def parse_config_text(text: str) -> JSONObject:
    """A mapping config from YAML or JSON text, validated; ConfigError has a one-line message."""
    if not text.strip():
        message = "the mapping config is empty"
        raise ConfigError(message)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        message = _one_line(f"invalid YAML{where}: {problem}")
        raise ConfigError(message) from None
    try:
        parse_mapping_config(data)
    except ConfigError as exc:
        raise ConfigError(_one_line(str(exc))) from None
    try:
        config: JSONObject = orjson.loads(orjson.dumps(data))
    except orjson.JSONEncodeError as exc:
        message = _one_line(f"invalid mapping config: not representable as JSON ({exc})")
        raise ConfigError(message) from None
    return config


def _one_line(message: str) -> str:
    return " ".join(message.split())
