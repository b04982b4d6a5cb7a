"""`python -m fundtrail_tracker worker`."""

from .cli import main

main()
