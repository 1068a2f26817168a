"""Collectors: each takes one kind of feed (CSV files, an inbox folder, MQTT) and hands raw observations
to the one ingest pipeline; none writes to the database itself."""
