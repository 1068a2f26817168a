"""MQTT collector (docs/interface.md §5): observations published on infra/v1/{operator}/{metric}, acknowledged after commit."""
