"""Grafana boards as code: generated from the catalogue and targets, provisioned from files or pushed by API."""
