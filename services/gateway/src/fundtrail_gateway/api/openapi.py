"""OpenAPI details: documented problem responses, the event contract schemas, golden examples."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from fundtrail_schemas.events import SourceEvent
from fundtrail_schemas.eventspec import bureau_specs
from fundtrail_schemas.examples import load_examples

from ..core.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Bad request (e.g. an invalid cursor or a body that is not JSON)",
    401: "Missing, expired or invalid bearer token",
    403: "The token's roles do not allow this operation",
    404: "Not found, or outside the caller's region (existence is not revealed)",
    409: "The action is impossible in the resource's current state",
    413: "The request body is too large",
    415: "Unsupported media type",
    422: "The request does not validate; `errors` lists each problem",
    429: "Rate limit exceeded; retry after `Retry-After` seconds",
    500: "Unexpected server error",
    503: "A dependency (Kafka, PostgreSQL) is unavailable; retry after `Retry-After` seconds",
}

COMMON = (400, 401, 403, 422, 429, 500)

# The types a bureau may publish, as the event-type registry says.
BUREAU_EVENT_TYPES = tuple(s.name for s in bureau_specs())


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting problem documents for `codes` (plus the common ones)."""
    return {code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in sorted({*COMMON, *codes})}


@cache
def event_examples() -> dict[str, dict[str, Any]]:
    """Golden examples of every event a bureau may publish, as OpenAPI examples."""
    golden = load_examples()
    return {name: {"summary": name, "value": golden[name]} for name in BUREAU_EVENT_TYPES if name in golden}


@cache
def _source_event_components() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = TypeAdapter(SourceEvent).json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return schema, defs


def events_request_body(max_items: int) -> dict[str, Any]:
    """Request body of POST /v1/events: one event or a batch; items are validated one by one."""
    examples = event_examples()
    batch = [examples[name]["value"] for name in ("FundAllocated", "FundTransferred") if name in examples]
    all_examples = {**examples, "batch": {"summary": "A batch", "value": batch}}
    return {
        "required": True,
        "description": (
            "One event or a batch. Each item is checked against the event contract on its own: a batch "
            "item that is not a valid event is reported in `rejected` with a problem document, and the "
            "other items are still published."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/SourceEvent"},
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": max_items,
                            "items": {
                                "anyOf": [{"$ref": "#/components/schemas/SourceEvent"}, {"type": "object"}],
                                "description": "A SourceEvent; any other object is reported as rejected",
                            },
                        },
                    ]
                },
                "examples": all_examples,
            }
        },
    }


def _rewrite_problem_content(doc: dict[str, Any]) -> None:
    ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not status.isdigit() or int(status) < 400:
                    continue
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": ref}}
                if status in ("429", "503"):
                    response["headers"] = {
                        "Retry-After": {
                            "description": "Seconds to wait", "schema": {"type": "integer"}, "required": True
                        }
                    }
                if status == "401":
                    response["headers"] = {
                        "WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}
                    }


def install_openapi(app: FastAPI) -> None:
    """Replace app.openapi with a builder that adds the contract schemas and problem media types."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        union, defs = _source_event_components()
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.items():
            components.setdefault(name, schema)
        components["SourceEvent"] = union
        _rewrite_problem_content(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
