"""`make run` as a developer uses it: the local stack in its own process, over HTTP and boto3."""

from __future__ import annotations

import signal

import pytest
import requests

DEMO_ADDRESS = "anna.schmidt@example.com"
pytestmark = pytest.mark.e2e


def test_demo_profile_is_served_by_email(local_stack):
    answer = requests.get(f"{local_stack.http}/api/profiles", params={"email": DEMO_ADDRESS}, timeout=10)
    assert answer.status_code == 200
    profile = answer.json()
    assert profile["email"] == DEMO_ADDRESS
    assert profile["status"] == "subscribed"


def test_api_write_is_visible_to_the_next_reader(local_stack):
    profile = requests.get(f"{local_stack.http}/api/profiles", params={"email": DEMO_ADDRESS}, timeout=10).json()
    answer = requests.patch(
        f"{local_stack.http}/api/profiles/{profile['id']}",
        json={"fields": {"city": "Potsdam"}},
        headers={"If-Match": f'"{profile["version"]}"'},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    read = requests.get(f"{local_stack.http}/api/profiles/{profile['id']}", timeout=10)
    assert read.status_code == 200
    assert read.json()["fields"]["city"]["value"] == "Potsdam"
    assert read.json()["version"] == profile["version"] + 1
    assert read.headers["ETag"] == f'"{profile["version"] + 1}"'
    stale = requests.patch(
        f"{local_stack.http}/api/profiles/{profile['id']}",
        json={"fields": {"city": "Berlin"}},
        headers={"If-Match": f'"{profile["version"]}"'},
        timeout=10,
    )
    assert stale.status_code == 412, "a writer holding the old version is refused"


def test_the_aws_endpoint_answers_the_readme_command(local_stack):
    """README: `aws --endpoint-url ... dynamodb scan --table-name selfservice-local-ProfileTable --select COUNT`."""
    counted = local_stack.client("dynamodb").scan(TableName="selfservice-local-ProfileTable", Select="COUNT")
    assert counted["Count"] > 0, "the demo data is there"


def test_new_profile_then_self_service_link_lands_in_the_outbox(local_stack):
    created = requests.post(
        f"{local_stack.http}/api/profiles",
        json={"email": "e2e.reader@example.com", "locale": "en", "fields": {"first_name": "Robin"}},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    profile_id = created.json()["id"]
    sent = requests.post(f"{local_stack.http}/api/profiles/{profile_id}/self-service-link", timeout=10)
    assert sent.status_code == 202
    outbox = requests.get(f"{local_stack.http}/_dev/api/outbox", timeout=10).json()
    mail = next(m for m in outbox if "e2e.reader@example.com" in m["to"])
    assert mail["subject"] == "Your link to your preferences"
    assert mail["headers"]["Content-Language"] == "en"
    assert "Hello Robin" in mail["text"]
    assert "Hello Robin" in mail["html"]
    assert f"{local_stack.http}/link?token=" in mail["text"]
    assert mail["sent_at"]
    configuration_set = local_stack.client("sesv2").get_configuration_set(ConfigurationSetName="selfservice-dev")
    assert configuration_set["ConfigurationSetName"] == "selfservice-dev", "emails go through the template's set"


def test_the_stack_answers_only_once_it_is_ready(local_stack):
    """Polled from the moment `make run` starts: nothing answers before the demo data is written, and the
    stack says when it is ready."""
    assert [profile["email"] for profile in local_stack.first_answer] == [
        "anna.schmidt@example.com",
        "ben.miller@example.com",
        "clara.weber@example.com",
        "david.jones@example.com",
        "eva.fischer@example.com",
        "frank.neumann@example.com",
    ]
    assert "Local stack ready." in local_stack.output()


def test_ctrl_c_stops_the_stack_cleanly(local_stack):
    local_stack.process.send_signal(signal.SIGINT)
    local_stack.process.wait(timeout=20)
    output = local_stack.output()
    assert local_stack.process.returncode == 0, output[-2000:]
    assert "Traceback" not in output
    assert DEMO_ADDRESS not in output, "no personal data in the log"
