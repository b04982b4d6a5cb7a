"""fund-tracker: validated, deduplicated fund ledger, trail writer, and the bureaus' publisher."""
