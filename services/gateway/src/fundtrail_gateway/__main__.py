"""`python -m fundtrail_gateway`: serve the API."""

from .main import run

run()
