"""The live violations stream against the real broker, through a real uvicorn server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from fundtrail_gateway.main import create_app
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import serve_in_thread
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.topics import VIOLATIONS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(settings_factory: Callable[..., GatewaySettings], kafka_bootstrap: str) -> Iterator[str]:
    app = create_app(settings_factory(kafka_bootstrap_servers=kafka_bootstrap, ensure_topics=True))
    with serve_in_thread(app) as url:
        yield url


def violation(region: str, department: str) -> dict[str, Any]:
    ev = dict(load_examples()["ViolationRaised"])
    level = {6: "county", 9: "town", 12: "village"}[len(region)]
    ev.update(event_id=str(uuid.uuid4()), violation_id=str(uuid.uuid4()), region_code=region, level=level,
              department=department, source_bureau=f"{region}-HG")
    return ev


def publish(bootstrap: str, events: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for ev in events:
            producer.send(VIOLATIONS, key=ev["fund_doc_no"].encode(), value=json.dumps(ev).encode()).get(10)
    finally:
        producer.close()


class SSEReader:
    """Minimal text/event-stream parser over an httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.iter_lines()

    def next_event(self) -> dict[str, str]:
        event: dict[str, str] = {}
        for line in self._lines:
            if not line:
                if event:
                    return event
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
        raise EOFError("stream ended")


def _read_in_thread(fn: Callable[[], Any], timeout: float = 30) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError("no event arrived in time")
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_stream_filters_by_region_and_department_and_resumes(
    server: str, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    headers = auth("compliance", "440705")
    mine = violation("440705101", "inspection")
    foreign = violation("440781101", "inspection")
    other_dept = violation("440705101", "finance")
    with httpx.Client(base_url=server, headers=headers, timeout=30) as client, client.stream(
        "GET", "/v1/violations/stream", params={"department": "inspection"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SSEReader(response)
        ready = _read_in_thread(reader.next_event)
        assert ready["event"] == "ready" and ready["id"].startswith("v1:")
        publish(kafka_bootstrap, [foreign, other_dept, mine])
        got = _read_in_thread(reader.next_event)
        assert got["event"] == "violation"
        assert json.loads(got["data"])["violation_id"] == mine["violation_id"]
        resume_from = ready["id"]

    # A reconnecting EventSource sends Last-Event-ID and gets what it missed, filters still applied.
    later = violation("440705101201", "inspection")
    publish(kafka_bootstrap, [later])
    with httpx.Client(base_url=server, headers={**headers, "Last-Event-ID": resume_from}, timeout=30) as client, \
            client.stream("GET", "/v1/violations/stream", params={"department": "inspection"}) as response:
        reader = SSEReader(response)
        assert _read_in_thread(reader.next_event)["event"] == "ready"
        seen = [json.loads(_read_in_thread(reader.next_event)["data"])["violation_id"] for _ in range(2)]
        assert seen == [mine["violation_id"], later["violation_id"]]


def test_auditor_sees_every_region_and_errors_are_problems(
    server: str, auth: Callable[..., dict[str, str]], kafka_bootstrap: str
) -> None:
    foreign = violation("440781101", "audit")
    with httpx.Client(base_url=server, headers=auth("auditor"), timeout=30) as client:
        bad = client.get("/v1/violations/stream", params={"department": "nope"})
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        with client.stream("GET", "/v1/violations/stream", params={"region": "440781"}) as response:
            reader = SSEReader(response)
            assert _read_in_thread(reader.next_event)["event"] == "ready"
            publish(kafka_bootstrap, [violation("440705101", "audit"), foreign])
            got = _read_in_thread(reader.next_event)
            assert json.loads(got["data"])["violation_id"] == foreign["violation_id"]
    with httpx.Client(base_url=server, timeout=30) as client:
        assert client.get("/v1/violations/stream").status_code == 401
