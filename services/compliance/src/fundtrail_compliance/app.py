"""The faust application: agents translate batches of records into calls on the `ComplianceService`.

Built by `build_app` at start-up (never at import). The enriched events, the hot path, are read by
a task with `fundtrail_runtime.kafka_batch.BatchReader` (aiokafka `getmany`, consumer group
`<app id>-enriched`), committing offsets only after the service returned. Case actions are a
faust agent with concurrency 1 (faust-streaming #606); case batches are taken with
`noack_take` and acked only after the service returned, so a failed batch is redelivered. Rule
packs are read outside the consumer group by every replica (`adapters.kafka.follow_topic`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import faust

from fundtrail_runtime.kafka_batch import BatchReader, from_faust_event
from fundtrail_runtime.worker import faust_options, thaw_if_due, until_done
from fundtrail_schemas.topics import CASES, COMPLIANCE_WINDOWS, ENRICHED_EVENTS, RULE_PACKS

from .adapters.idle import IdlePartitions
from .adapters.kafka import ProducerSink, follow_topic
from .adapters.metrics import Metrics
from .packs import latest_topic_docs, load_dir
from .service import ComplianceService
from .settings import ComplianceSettings
from .windowing import WindowOwner

log = logging.getLogger(__name__)


def build_app(settings: ComplianceSettings, metrics: Metrics) -> faust.App:
    """The faust app with its agents, wired to a `ComplianceService` over the packs of the directory."""
    docs, packs = load_dir(settings.rulepack_dir)  # a broken pack directory stops start-up, loudly
    app = faust.App(
        settings.app_id,
        **faust_options(
            settings.kafka_bootstrap_servers, web_enabled=settings.web_enabled, web_port=settings.web_port,
            data_dir=str(settings.data_dir), batch_size=settings.batch_size,
        ),
    )
    reader = BatchReader(
        settings.kafka_bootstrap_servers, [ENRICHED_EVENTS], f"{settings.app_id}-enriched",
        max_records=settings.batch_size, client_id=settings.app_id, commit_interval=settings.commit_interval,
    )

    watch = IdlePartitions(reader.end_offsets, idle_after=settings.idle_after, refresh=settings.tick_seconds)

    async def enriched_partitions(processed: Mapping[int, int]) -> tuple[set[int], set[int]]:
        """The enriched-topic partitions assigned here, and the idle ones among those read up to
        their high watermark (the next offset processed, or the consumer's position for one not
        processed yet)."""
        consumer = reader.consumer
        assigned: set[int] = set()
        if consumer is None:  # not started yet: nothing is assigned
            return assigned, set()
        maybe: dict[Any, int] = {}
        for tp in consumer.assignment():
            if tp.topic != ENRICHED_EVENTS:
                continue
            assigned.add(tp.partition)
            high = consumer.highwater(tp)
            if high is None:
                continue  # not fetched yet: it may hold anything
            nxt = processed.get(tp.partition)
            if nxt is None:
                nxt = await consumer.position(tp)
            if nxt is not None and nxt >= high:
                maybe[tp] = nxt
        return assigned, await watch.idle(maybe)

    service = ComplianceService(
        settings.database_url, ProducerSink(app.producer), docs, packs, grace=settings.grace_period, metrics=metrics,
        partitions=enriched_partitions, route_windows=True,
    )
    # Window rules: the repartition topic, read in a group of its own (windowing.py).
    window_reader = BatchReader(
        settings.kafka_bootstrap_servers, [COMPLIANCE_WINDOWS], f"{settings.app_id}-windows",
        max_records=settings.batch_size, client_id=settings.app_id, commit_interval=settings.commit_interval,
    )

    def window_partitions() -> tuple[frozenset[int], int] | None:
        """The window partitions assigned here and the group generation: a partition given away and
        back between two batches (another replica wrote its windows meanwhile) is a new assignment."""
        consumer = window_reader.consumer
        if consumer is None:
            return None
        coordinator = getattr(consumer, "_coordinator", None)
        generation = int(getattr(coordinator, "generation", -1) or -1)
        return frozenset(tp.partition for tp in consumer.assignment() if tp.topic == COMPLIANCE_WINDOWS), generation

    windows = WindowOwner(settings.database_url, ProducerSink(app.producer), service, metrics, window_partitions)
    cases_topic = app.topic(CASES, key_type=bytes, value_type=bytes)
    packs_read_to: dict[int, int] = {}  # where the start-up read of the rule-packs topic stopped

    @app.task
    async def start_service() -> None:
        # Agents wait for this (ComplianceService.ready) before their first batch.
        topic_docs, read_to = await asyncio.to_thread(latest_topic_docs, settings.kafka_bootstrap_servers, RULE_PACKS)
        packs_read_to.update(read_to)
        await service.start(topic_docs)

    @app.timer(interval=settings.tick_seconds)
    async def idle_partitions() -> None:
        if not service.ready.is_set():
            return
        try:
            await service.tick()
        except Exception:
            log.exception("idle-partition tick failed; the next one retries")

    def after_batch(lags: dict[tuple[str, int], int]) -> None:
        metrics.record_lag(lags)
        thaw_if_due()  # the collector's periodic whole pass, between batches (see CollectorPauses)

    @app.task
    async def enriched_events() -> None:
        # The hot path reads with aiokafka directly (fundtrail_runtime.kafka_batch says why); offsets
        # are committed only after the service returned, so a failed batch is redelivered.
        await reader.run(list, lambda batch: until_done(service.handle_enriched, batch, 0.5), after_batch)

    @app.task
    async def window_events() -> None:
        await service.ready.wait()
        await window_reader.run(list, lambda batch: until_done(windows.handle, batch, 0.5), None)

    @app.agent(cases_topic, concurrency=1)
    async def case_actions(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(  # type: ignore[attr-defined]
            settings.batch_size, within=settings.batch_timeout
        ):
            await until_done(service.handle_cases, [from_faust_event(e) for e in events], 0.5)
            for e in events:
                await stream.ack(e)

    @app.task
    async def rule_packs() -> None:
        # Broadcast, not group consumption: every replica must judge with the same packs, so each
        # follows the whole topic from where its start-up read stopped.
        await service.ready.wait()
        while True:
            try:
                async for inb in follow_topic(settings.kafka_bootstrap_servers, RULE_PACKS, packs_read_to,
                                              f"{settings.app_id}-rule-packs"):
                    await service.handle_rule_pack(inb)
                    packs_read_to[inb.partition] = inb.offset + 1
            except Exception:
                log.exception("following the rule-packs topic failed; resuming in 1 s")
                await asyncio.sleep(1)

    if settings.watch_rulepacks:

        @app.task
        async def watch_pack_dir() -> None:
            from watchfiles import awatch

            async for changes in awatch(settings.rulepack_dir, recursive=False):
                if any(str(path).endswith(".yaml") for _, path in changes):
                    await service.reload_dir(settings.rulepack_dir)

    @app.on_before_shutdown.connect
    async def close_service(sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await service.close()
        await windows.close()

    app.compliance = service  # type: ignore[attr-defined]
    return app
