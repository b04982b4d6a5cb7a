"""Kafka adapter: what the service needs from a consumed record and from a producer."""

from __future__ import annotations

# Re-exported: the service names records and sinks by these.
from fundtrail_runtime.kafka_batch import Inbound as Inbound
from fundtrail_runtime.kafka_sink import AiokafkaSink as AiokafkaSink
from fundtrail_runtime.kafka_sink import Headers as Headers
from fundtrail_runtime.kafka_sink import ProducerSink as ProducerSink
from fundtrail_runtime.kafka_sink import Record as Record
from fundtrail_runtime.kafka_sink import Sink as Sink
