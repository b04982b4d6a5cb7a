"""Property-based conformance: every operation, every role, against the OpenAPI document.

The app runs in process (schemathesis' ASGI transport runs its lifespan) over the seeded PostgreSQL
database and the real Kafka broker, so publishing operations really publish. All built-in checks
run. The only configuration below states what the schema cannot: semantic validation of events and
rule packs beyond JSON Schema (a schema-valid event whose region code contradicts its level is a
422), and that the live stream is read up to its first event.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from fundtrail_gateway.main import create_app
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import serve_in_thread

pytestmark = pytest.mark.integration

SEMANTIC_422 = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]
# A cursor is valid only if this server issued it; any other string is a 400, which no schema can express.
CURSOR_400 = ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]

CONFIG = {
    # Credentials come from the test (one token per role); schemathesis' ignored_auth check still probes
    # every operation without them.
    "generation": {"max-examples": 6, "deterministic": True, "with-security-parameters": False},
    "operations": [
        {"include-path": "/v1/events", "include-method": "POST",
         "checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_422}}},
        {"include-path": "/v1/imports", "include-method": "POST",
         "checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_422}}},
        {"include-path-regex": "^/v1/rulepacks/", "include-method": "PUT",
         "checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_422}}},
        # Each accepted stream request opens a Kafka consumer, and event bodies are large unions: the
        # examples and fuzzing phases cover them; the exhaustive coverage phase would take minutes.
        {"include-path": "/v1/violations/stream", "max-stream-events": 1, "generation": {"max-examples": 3},
         "phases": {"coverage": {"enabled": False}}},
        {"include-path": "/v1/events", "include-method": "POST", "phases": {"coverage": {"enabled": False}}},
        *(
            {"include-path": path, "include-method": "GET",
             "checks": {"positive_data_acceptance": {"expected-statuses": CURSOR_400}}}
            for path in ("/v1/funds", "/v1/violations", "/v1/funds/{fund_doc_no}/trail",
                         "/v1/projects/{project_id}/trail", "/v1/payments/{payment_id}/trail",
                         "/v1/vendors/{vendor_id}/trail")
        ),
    ],
}

ROLES = {
    "bureau": ("bureau", "440705"),
    "compliance": ("compliance", "440705"),
    "auditor": ("auditor", None),
    "admin": ("admin", None),
}


def _document() -> dict[str, Any]:
    """The OpenAPI document, built without I/O from an app that is never started."""
    settings = GatewaySettings(
        database_url="postgresql+psycopg://doc@127.0.0.1:9/doc",
        kafka_bootstrap_servers="127.0.0.1:9",
        environment="test",
        jwt_algorithm="HS256",
        jwt_secret=secrets.token_urlsafe(48),
        enable_tracing=False,
        ensure_topics=False,
    )
    return create_app(settings).openapi()


# The document is loaded at import (schemathesis' fixture-based lazy loader does not run on pytest 9);
# requests go to the live server below.
schema = schemathesis.openapi.from_dict(_document(), config=SchemathesisConfig.from_dict(CONFIG))


@pytest.fixture(scope="module")
def live_url(settings_factory: Callable[..., GatewaySettings], kafka_bootstrap: str) -> Iterator[str]:
    """The app under test behind a real uvicorn server on loopback: seeded PostgreSQL, real Kafka."""
    app = create_app(settings_factory(kafka_bootstrap_servers=kafka_bootstrap, ensure_topics=True))
    with serve_in_thread(app) as url:
        # Probes that checks send on their own (e.g. without credentials) go to the same server.
        schema.config.update(base_url=url)
        yield url


@pytest.mark.parametrize("role", sorted(ROLES))
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: schemathesis.Case, role: str, live_url: str, auth: Callable[..., dict[str, str]]) -> None:
    name, region = ROLES[role]
    case.call_and_validate(base_url=live_url, headers=auth(name, region))
