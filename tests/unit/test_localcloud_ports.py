"""Every port `localcloud` starts a server on is the port every deployed function is given: with
all of them moved through the environment (a second stack beside the first), no function keeps a
default port (a second stack's emails once went to the first stack's mail server)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from localcloud import directory, identity, kafka, localstack, postgres, smtp
from tools.function_environment import function_environment, local_parameters, template

ROOT = Path(__file__).resolve().parents[2]
MOVED = {
    "PG_PORT": 15433,
    "KAFKA_PORT": 19993,
    "SMTP_PORT": 2626,
    "DIRECTORY_PORT": 8227,
    "IDENTITY_PORT": 8228,
}
DEFAULTS = {
    "PG_PORT": postgres.DEFAULT_PORT,
    "KAFKA_PORT": kafka.DEFAULT_PORT,
    "SMTP_PORT": smtp.DEFAULT_PORT,
    "DIRECTORY_PORT": directory.DEFAULT_PORT,
    "IDENTITY_PORT": identity.DEFAULT_PORT,
}


def test_samconfig_names_no_port() -> None:
    overrides = tomllib.loads((ROOT / "samconfig.toml").read_text())["local"]["deploy"]["parameters"]
    text = json.dumps(overrides["parameter_overrides"])
    for port in (*DEFAULTS.values(), localstack.DEFAULT_PORT):
        assert str(port) not in text


def test_every_function_gets_the_ports_the_servers_run_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, port in MOVED.items():
        monkeypatch.setenv(name, str(port))
    parameters = local_parameters()
    environments = {
        name: function_environment(name, parameters)
        for name, resource in template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    everything = json.dumps(environments)
    for name, default in DEFAULTS.items():
        assert f":{default}" not in everything and f'"{default}"' not in everything, name
    assert environments["EmailSenderFunction"]["SMTP_PORT"] == str(MOVED["SMTP_PORT"])
    assert environments["PatientsApiFunction"]["DB_PORT"] == str(MOVED["PG_PORT"])
    assert str(MOVED["KAFKA_PORT"]) in environments["KafkaBridgeFunction"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert str(MOVED["DIRECTORY_PORT"]) in environments["DirectoryScraperFunction"]["DIRECTORY_BASE_URL"]


def test_stray_ports_names_every_local_port_no_server_of_this_cloud_uses() -> None:
    from localcloud.ports import StrayPort, stray_ports

    environments = {
        "EmailSender": {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525", "DB_PORT": "15433"},
        "Scraper": {"DIRECTORY_BASE_URL": "http://127.0.0.1:8117/api", "AWS_REGION": "eu-central-1"},
        "Bridge": {"KAFKA_BOOTSTRAP_SERVERS": "localhost:19993,[::1]:19092"},
        "Aurora": {"DB_HOST": "proxy.example", "DB_PORT": "15433", "NOTE": "rds.example:5432"},
    }
    assert stray_ports(environments, {15433, 19993, 2626, 8227}) == [
        StrayPort("Bridge", "KAFKA_BOOTSTRAP_SERVERS", 19092),
        StrayPort("EmailSender", "SMTP_PORT", 2525),
        StrayPort("Scraper", "DIRECTORY_BASE_URL", 8117),
    ]
    assert stray_ports(environments, {15433, 19993, 19092, 2525, 8117}) == []


def test_server_ports_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from localcloud.ports import server_ports

    for name, port in {**MOVED, "LOCALSTACK_PORT": 4666}.items():
        monkeypatch.setenv(name, str(port))
    assert sorted(server_ports().values()) == sorted([*MOVED.values(), 4666])
