"""fundtrail gateway: FastAPI over the trail tables; writes only through Kafka."""
