"""Alerting: rules, the alert engine and life cycle, notifications and the scheduler (contract §9)."""
