"""Command-line entry points of the MQTT collector: `infrawatch ingest mqtt` and `infrawatch mqtt passwd`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `ingest mqtt` and `mqtt passwd` commands to the infrawatch CLI."""
    ingest_app = typer.Typer(help="Collectors that run as services.", no_args_is_help=True)
    mqtt_app = typer.Typer(help="MQTT broker administration.", no_args_is_help=True)
    ingest_app.command("mqtt")(ingest_mqtt)
    mqtt_app.command("passwd")(mqtt_passwd)
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(mqtt_app, name="mqtt")


def ingest_mqtt(
    share_group: Annotated[
        str | None, typer.Option(help="Join this MQTT 5 shared subscription ($share/NAME/infra/v1/+/+).")
    ] = None,
    client_id: Annotated[
        str, typer.Option(help="Fixed MQTT client id; each process of a share group needs its own.")
    ] = "infrawatch-ingest",
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port (/metrics).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Flush a batch at this many observations.")] = 20000,
    batch_ms: Annotated[int, typer.Option(min=1, help="... or this many milliseconds after its first message.")] = 200,
    receive_maximum: Annotated[
        int, typer.Option(min=1, max=65535, help="Unacknowledged messages the broker may send us at once.")
    ] = 40000,
) -> None:
    """Store observations published on infra/v1/{operator}/{metric}; acknowledge each message after commit."""
    from collectors.mqtt.collector import MqttCollector
    from collectors.mqtt.config import CollectorConfig
    from core.settings import get_settings
    from storage import database_url

    url = database_url()
    problem = _schema_problem(url)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    config = CollectorConfig(
        mqtt_url=get_settings().mqtt_url,
        database_url=url,
        client_id=client_id,
        share_group=share_group,
        batch_observations=batch_size,
        batch_interval_s=batch_ms / 1000,
        receive_maximum=receive_maximum,
        protocol=get_settings().mqtt_protocol,
    )
    MqttCollector(config).run()


def _schema_problem(url: str) -> str | None:
    """What is wrong with the database's schema, if it is reachable; an unreachable one is retried later."""
    import logging

    import psycopg

    from storage import SchemaBehind, check_schema

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            check_schema(conn)
    except SchemaBehind as exc:
        return str(exc)
    except psycopg.OperationalError as exc:
        logging.getLogger(__name__).warning(
            "database not reachable yet; messages stay with the broker until it is",
            extra={"event": "mqtt.db_unreachable", "error": str(exc).strip()[:300]},
        )
    except psycopg.ProgrammingError as exc:
        return f"the database has no infrawatch schema ({exc}); run `infrawatch db upgrade` first"
    return None


def mqtt_passwd(
    username: Annotated[str, typer.Argument(help="Operator id (its MQTT user name), or 'infrawatch' for the service.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Mosquitto password file to create or update.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input instead of generating one.")
    ] = False,
) -> None:
    """Create or replace a broker user's password (Mosquitto 2 hash format); prints a generated password once."""
    from collectors.mqtt.passwd import generate_password, set_password
    from reference.operators import is_valid_operator_id

    if username != "infrawatch" and not is_valid_operator_id(username):
        typer.echo(
            f"{username!r} is not a valid operator id (lower-case letter first, then letters, digits or _); "
            "the user name must be the operator id the ACL maps to infra/v1/<username>/",
            err=True,
        )
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else generate_password()
    if not password:
        typer.echo("empty password on standard input", err=True)
        raise typer.Exit(2)
    new = set_password(file, username, password)
    typer.echo(f"{'added' if new else 'updated'} {username} in {file}; reload mosquitto (kill -HUP) to apply", err=True)
    if not password_stdin:
        typer.echo(password)
