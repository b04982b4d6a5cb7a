"""fundtrail compliance service: rule packs, stateful rules, violations, cases and replay."""
