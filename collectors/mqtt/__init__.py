"""MQTT collector (contract §5): observations published on infra/v1/{operator}/{metric}, acknowledged after commit."""
