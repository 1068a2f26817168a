"""infrawatch at the top of the layers: the `infrawatch` command line, the demo and the scheduler, which wire
every layer together (the ground they all stand on is `core/`)."""

__version__ = "0.1.0"
