"""Start-up wiring of the worker: settings, tracing, topics, migrations, metrics, faust."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def run_worker() -> None:
    """Wire everything and run the faust worker until it is stopped (SIGTERM / SIGINT)."""
    import faust
    from prometheus_client import start_http_server

    from fundtrail_runtime.db import upgrade_or_check
    from fundtrail_runtime.kafka_admin import ensure_topics
    from fundtrail_runtime.worker import bound_shutdown, freeze_survivors, tune_gc, use_uvloop
    from fundtrail_schemas.telemetry import setup_tracing

    from .adapters.metrics import Metrics
    from .app import build_app
    from .settings import ComplianceSettings

    settings = ComplianceSettings()  # required values come from the environment
    setup_tracing("compliance")
    created = ensure_topics(settings.kafka_bootstrap_servers)
    if created:
        log.info("created topics: %s", ", ".join(created))
    upgrade_or_check(settings.database_url)  # the owner migrates; a writer-role worker only checks
    metrics = Metrics()
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    use_uvloop()  # before the app: it keeps the loop current when it is built
    app = build_app(settings, metrics)
    tune_gc()
    freeze_survivors()  # and keep what the worker accumulates off the collector's walks too
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    bound_shutdown(worker, settings.shutdown_timeout).execute_from_commandline()


