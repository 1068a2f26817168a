"""`python -m infrawatch` runs the CLI."""

from infrawatch.cli import app

app(prog_name="infrawatch")
