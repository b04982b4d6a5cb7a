"""The faust application: agents translate batches of records into calls on the `Tracker`.

Built by `build_app` at start-up (never at import). The raw topic, the hot path, is read by a task
with `fundtrail_runtime.kafka_batch.BatchReader` (aiokafka `getmany`, its own consumer group
`<app id>-raw`); its offsets are committed only after `Tracker.commit_raw` returned. The trail
inputs (violations, case actions) are a faust agent with concurrency 1 (faust-streaming #606)
taking batches with `noack_take`: records are acked only after `Tracker.handle_trail` returned, so
a failed or interrupted batch is redelivered instead of being committed by `take()`'s cleanup.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faust
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_runtime.kafka_batch import BatchReader, from_faust_event
from fundtrail_runtime.worker import faust_options, thaw_if_due, until_done
from fundtrail_schemas.topics import raw_topic_pattern

from .adapters.kafka import ProducerSink
from .adapters.metrics import Metrics
from .service import Tracker, TrackerConfig
from .settings import TrackerSettings
from .topics import TrackerTopics

log = logging.getLogger(__name__)

# Enriched events are ~3 KiB; faust's 16 KiB default batches would mean a request per few records.
PRODUCER_MAX_BATCH_BYTES = 512 * 1024
PRODUCER_MAX_REQUEST_BYTES = 2 * 1024 * 1024
# No linger: a batch's records are all queued before the sender runs, so they share requests anyway,
# and a 5 ms linger measured +5 ms on every hop under light load.
PRODUCER_LINGER_SECONDS = 0.0


def build_app(settings: TrackerSettings, signing_key: Ed25519PrivateKey, metrics: Metrics) -> faust.App:
    """The faust app with its agents and timers, wired to a `Tracker`."""
    app = faust.App(
        settings.app_id,
        **faust_options(
            settings.kafka_bootstrap_servers, web_enabled=settings.web_enabled, web_port=settings.web_port,
            data_dir=str(settings.data_dir), batch_size=settings.batch_size,
            producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
            producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,
            producer_linger=PRODUCER_LINGER_SECONDS,
            broker_session_timeout=settings.session_timeout,
            broker_heartbeat_interval=settings.heartbeat_interval,
        ),
    )
    topics = TrackerTopics.with_prefix(settings.topic_prefix)
    tracker = Tracker(
        settings.database_url,
        ProducerSink(app.producer),
        config=TrackerConfig(
            group=settings.app_id,
            max_future_skew=settings.max_future_skew,
            park_timeout=settings.park_timeout,
            sweep_limit=settings.batch_size,
            log_id=settings.trail_log_id,
            topics=topics,
        ),
        signing_key=signing_key,
        metrics=metrics,
    )
    trail_topic = app.topic(topics.violations, topics.cases, key_type=bytes, value_type=bytes)

    def record_lag(events: Sequence[Any]) -> None:
        last: dict[Any, int] = {}
        for e in events:
            tp = e.message.tp
            last[tp] = max(last.get(tp, -1), e.message.offset)
        for tp, offset in last.items():
            try:
                highwater = app.consumer.highwater(tp)
            except Exception:  # the consumer may be rebalancing; the next batch reports
                continue
            if highwater is not None:
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(highwater - offset - 1, 0))

    reader = BatchReader(
        settings.kafka_bootstrap_servers, [topics.raw], f"{settings.app_id}-raw", max_records=settings.batch_size,
        pattern=raw_topic_pattern(topics.prefix),  # the unscoped raw topic and every region's
        client_id=settings.app_id, session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000), commit_interval=settings.commit_interval,
    )

    def raw_lag(lags: dict[tuple[str, int], int]) -> None:
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        thaw_if_due()  # the collector's periodic whole pass, between batches (see CollectorPauses)

    @app.task
    async def raw_events() -> None:
        # The hot path reads with aiokafka directly (fundtrail_runtime.kafka_batch says why); the
        # next batch is read while one is processed, and batches and their offsets commit in order.
        # (Validating batch N+1 during N's transaction was measured: no gain on 2 cores.)
        await reader.run(tracker.prepare_raw, lambda prepared: until_done(tracker.commit_raw, prepared), raw_lag)

    @app.agent(trail_topic, concurrency=1)
    async def trail_inputs(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_timeout):
            await until_done(tracker.handle_trail, [from_faust_event(e) for e in events])
            for e in events:
                await stream.ack(e)
            record_lag(events)

    cosignature_topic = app.topic(topics.cosignatures, key_type=bytes, value_type=bytes)

    @app.agent(cosignature_topic, concurrency=1)
    async def cosignatures(stream: Any) -> None:
        # Witness cosignatures the gateway verified and published (it writes only through Kafka).
        async for events in stream.noack_take(100, within=settings.batch_timeout):
            await until_done(tracker.store_cosignatures, [from_faust_event(e).value for e in events])
            for e in events:
                await stream.ack(e)

    @app.task
    async def resign_legacy_checkpoints() -> None:
        # Checkpoints stored before migration 0006 have no C2SP note; sign them once in the new format.
        try:
            done = await tracker.resign_legacy_checkpoints()
        except Exception:
            log.exception("re-signing old-format checkpoints failed; the next start retries")
            return
        if done:
            log.info("re-signed %d old-format checkpoints as C2SP notes", done)

    @app.timer(interval=settings.checkpoint_interval)
    async def checkpoint() -> None:
        try:
            cp = await tracker.checkpoint()
        except Exception:
            log.exception("signing a trail checkpoint failed; the next interval retries")
            return
        if cp is not None:
            log.info("trail checkpoint: size %d root %s", cp.tree_size, cp.root_hash)

    @app.timer(interval=settings.park_sweep_interval)
    async def sweep_parked() -> None:
        try:
            result = await tracker.sweep_parked()
        except Exception:
            log.exception("sweeping parked events failed; the next interval retries")
            return
        if result.accepted or result.rejected:
            log.info("parked events: %d released, %d rejected", result.accepted, result.rejected)

    @app.task
    async def quiet_root_logger() -> None:
        # mode leaves the root logger at DEBUG and filters in its handler, so every library builds
        # a log record per message (aiokafka does, per produced record). Filter at the source.
        logging.getLogger().setLevel(settings.log_level.upper())

    @app.on_before_shutdown.connect
    async def close_tracker(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await tracker.close()

    app.tracker = tracker  # type: ignore[attr-defined]
    return app
