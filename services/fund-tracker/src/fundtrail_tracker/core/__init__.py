"""The pure core of fund-tracker: validation, ledger transitions, batch decisions, trail leaves."""
