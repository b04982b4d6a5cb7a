"""Thin adapters: PostgreSQL reads, Kafka publishing and tailing, key files, rule-pack files."""
