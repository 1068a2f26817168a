"""Alerting: rules, the alert engine and life cycle, notifications and the scheduler (docs/interface.md §9)."""
