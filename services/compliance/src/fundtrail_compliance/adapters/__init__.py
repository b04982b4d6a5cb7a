"""Adapters: PostgreSQL persistence and Kafka I/O."""
