"""infrawatch: the service's wiring — settings, logging, embedded services and the `infrawatch` CLI."""

__version__ = "0.1.0"
