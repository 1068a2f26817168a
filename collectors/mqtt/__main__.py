"""`python -m collectors.mqtt ingest mqtt ...`: the collector's commands without loading the whole CLI."""

import typer

from collectors.mqtt.cli import register
from core.logs import setup_logging
from core.settings import get_settings

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
register(app)
settings = get_settings()
setup_logging(settings.log_level, json_lines=settings.log_json)
app(prog_name="python -m collectors.mqtt")
