"""`python -m fundtrail_compliance worker`."""

from .cli import main

main()
