"""Loading rule packs from a directory or a document, validating them before they go live."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundtrail_schemas.kafka_security import client_security
from fundtrail_schemas.rulepack import RulePack, RulePackError, parse_pack

from .core.evaluator import PackSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackDoc:
    """One pack as loaded: the parsed pack, where it came from, its text."""

    pack: RulePack
    source: str
    text: str


def read_dir(directory: Path) -> dict[str, PackDoc]:
    """Every `*.yaml` pack of a directory by department; RulePackError names the file on any problem."""
    docs: dict[str, PackDoc] = {}
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        pack = parse_pack(text, str(path))
        dept = pack.department.value
        if dept in docs:
            raise RulePackError(str(path), f"a second pack for {dept} (first: {docs[dept].source})")
        docs[dept] = PackDoc(pack, str(path), text)
    if not docs:
        raise RulePackError(str(directory), "no *.yaml rule packs found")
    return docs


def compile_docs(docs: Mapping[str, PackDoc], overrides: Mapping[str, Mapping[str, Any]] | None = None) -> PackSet:
    """Compile a complete set (every expression); raises RulePackError naming file, rule and problem."""
    return PackSet(((d.pack, d.source) for d in docs.values()), overrides)


def set_version(packs: PackSet) -> str:
    """The version of a whole pack set that verdicts record (and deduplication is keyed by): the
    first 16 hex digits of its fingerprint, so any change of any rule, version or parameter counts."""
    return packs.fingerprint()[:16]


def load_dir(directory: Path) -> tuple[dict[str, PackDoc], PackSet]:
    """Read and compile a pack directory."""
    docs = read_dir(directory)
    return docs, compile_docs(docs)


def latest_topic_docs(bootstrap: str, topic: str) -> tuple[list[Any], dict[int, int]]:
    """The latest document per department on the (compacted) rule-packs topic, read by a throw-away
    consumer (what was published there stays live across restarts), and the end offset per partition
    it read up to (where following the topic starts, `adapters.kafka.follow_topic`)."""
    from kafka import KafkaConsumer, TopicPartition

    from .adapters.kafka import Inbound

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             **client_security("kafka-python"))
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return [], {}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        latest: dict[bytes | None, Inbound] = {}
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for r in records:
                    if r.offset < end[tp] and r.value is not None:
                        latest[r.key] = Inbound(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
        docs = sorted(latest.values(), key=lambda i: (i.partition, i.offset))
        return docs, {tp.partition: n for tp, n in end.items()}
    finally:
        consumer.close()
