"""Pure core of the compliance service: no Kafka, no SQL, no I/O."""
