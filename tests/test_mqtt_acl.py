"""The shipped broker configuration (deploy/mosquitto): no anonymous access, passwords made by
`infrawatch mqtt passwd`, and an ACL that confines each operator to infra/v1/<its id>/ and its own _rejects."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import typer
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from collectors.mqtt.cli import register
from tests.conftest import Broker
from tests.mqtt_support import IngestProcess, Publisher, Subscriber, scalar, wait_for

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "mosquitto"
#: Lines of the shipped mosquitto.conf that only make sense on the production host.
HOST_ONLY = ("listener", "certfile", "keyfile", "password_file", "acl_file", "persistence_location", "log_dest")


def shipped_conf(password_file: Path) -> str:
    """The shipped configuration with this test's listener, password file and a private store."""
    kept = [
        line
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split()[0] not in HOST_ONLY
    ]
    extra = [f"password_file {password_file}", f"acl_file {DEPLOY / 'acl'}"]  # the fixture adds `user root`
    return "\n".join(kept + extra) + "\n"


def make_password(runner: CliRunner, app: typer.Typer, user: str, file: Path) -> str:
    result = runner.invoke(app, ["mqtt", "passwd", user, "--file", str(file)])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def secured_broker(tmp_path, broker):  # `broker` only to share its skip/fail rule when Mosquitto is missing
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    passwd = tmp_path / "passwd"
    passwords = {user: make_password(runner, app, user, passwd) for user in ("infrawatch", "cmcc", "ctcc")}
    b = Broker(tmp_path / "secured")
    b.workdir.mkdir()
    b.conf_extra = shipped_conf(passwd)
    b.start()
    yield b, passwords
    b.stop()


def puback_reason(port: int, user: str, password: str, topic: str) -> int:
    """Publish one QoS 1 message as `user`; the broker's PUBACK reason code (0 = accepted, 135 = not authorized)."""
    codes: list[int] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_publish = lambda c, u, mid, rc, props: codes.append(rc.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, '{"ts": "2024-01-31T00:00:00+08:00", "region": "360100", "value": 1}', qos=1)
    wait_for(lambda: bool(codes), 10, "no PUBACK")
    client.disconnect()
    client.loop_stop()
    return codes[0]


def test_operator_cannot_publish_under_another_operator(secured_broker):
    broker, pw = secured_broker
    service = Subscriber(broker.port, "infra/v1/#", "infrawatch", pw["infrawatch"])
    assert puback_reason(broker.port, "cmcc", pw["cmcc"], "infra/v1/ctcc/bs5g_total") == 135  # not authorized
    assert puback_reason(broker.port, "cmcc", pw["cmcc"], "infra/v1/cmcc/bs5g_total") == 0
    wait_for(lambda: len(service.messages) >= 1, 10, "the service saw nothing")
    time.sleep(0.3)
    assert [topic for topic, _ in service.messages] == ["infra/v1/cmcc/bs5g_total"]  # ctcc's topic never reached it
    service.close()


def test_operator_reads_only_its_own_rejects(secured_broker):
    broker, pw = secured_broker
    cmcc_foreign = Subscriber(broker.port, "infra/v1/ctcc/_rejects", "cmcc", pw["cmcc"])
    cmcc_all = Subscriber(broker.port, "infra/v1/+/_rejects", "cmcc", pw["cmcc"])
    ctcc_own = Subscriber(broker.port, "infra/v1/ctcc/_rejects", "ctcc", pw["ctcc"])
    service = Publisher(broker.port, "infrawatch", pw["infrawatch"])
    service.publish_all([("infra/v1/ctcc/_rejects", '{"reason": "for ctcc"}'), ("infra/v1/cmcc/_rejects", "{}")])
    wait_for(lambda: len(ctcc_own.messages) == 1, 10, "ctcc did not get its own rejects")
    wait_for(lambda: len(cmcc_all.messages) == 1, 10, "cmcc did not get its own rejects")
    time.sleep(0.3)
    assert cmcc_foreign.messages == []
    assert [t for t, _ in cmcc_all.messages] == ["infra/v1/cmcc/_rejects"]
    for s in (cmcc_foreign, cmcc_all, ctcc_own):
        s.close()
    service.close()


def test_anonymous_and_wrong_password_are_refused(secured_broker):
    broker, pw = secured_broker
    for user, password in ((None, None), ("cmcc", "wrong-password"), ("cmcc", pw["cmcc"])):
        answers: list[int] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user:
            client.username_pw_set(user, password)
        client.on_connect = lambda c, u, f, rc, p, answers=answers: answers.append(rc.value)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        wait_for(lambda answers=answers: bool(answers), 10, "no CONNACK")
        client.disconnect()
        client.loop_stop()
        expected = 0 if password == pw["cmcc"] else 135  # 135: not authorized (the positive case proves the setup)
        assert answers[0] in ((0,) if expected == 0 else (134, 135)), (user, answers)


def test_ingest_service_account_stores_and_reports_rejects_under_the_shipped_acl(tmp_path, secured_broker, db_url):
    broker, pw = secured_broker
    url = f"mqtt://infrawatch:{pw['infrawatch']}@127.0.0.1:{broker.port}"
    ingest = IngestProcess(tmp_path, db_url, url, "iw-acl-ingest", "--share-group", "ingest").start()
    try:
        ingest.wait_subscribed()
        own_rejects = Subscriber(broker.port, "infra/v1/cmcc/_rejects", "cmcc", pw["cmcc"])
        cmcc = Publisher(broker.port, "cmcc", pw["cmcc"])
        good = {"ts": "2024-01-31T00:00:00+08:00", "region": "360100", "value": 3}
        cmcc.publish_all([("infra/v1/cmcc/bs5g_total", json.dumps([good, {**good, "value": -1}]))])
        wait_for(lambda: len(own_rejects.messages) == 1, 30, "cmcc got no rejection report")
        assert own_rejects.json()[0]["index"] == 1
        assert scalar(db_url, "SELECT count(*) FROM observation WHERE operator = 'cmcc'") == 1
        cmcc.close()
        own_rejects.close()
    finally:
        ingest.stop()
