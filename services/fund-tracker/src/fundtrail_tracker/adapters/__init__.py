"""Adapters: PostgreSQL, Kafka, metrics, tracing."""
