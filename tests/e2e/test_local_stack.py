"""`make run` as a developer uses it: the local stack in its own process, over HTTP and boto3."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
DEMO_ADDRESS = "anna.schmidt@example.com"
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    def __init__(self, process: subprocess.Popen[str], http: str, aws: str) -> None:
        self.process, self.http, self.aws = process, http, aws

    def client(self, service: str):  # noqa: ANN201 - boto3 client
        return boto3.client(service, endpoint_url=self.aws, region_name="eu-central-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    http_port, aws_port = free_port(), free_port()
    env = {**os.environ, "DEVSTACK_HTTP_PORT": str(http_port), "DEVSTACK_AWS_PORT": str(aws_port),
           "PYTHONPATH": f"{REPO / 'layers' / 'shared'}{os.pathsep}{REPO}", "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    http = f"http://127.0.0.1:{http_port}"
    while time.monotonic() - started < 60:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if requests.get(f"{http}/_dev/api/outbox", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the local stack was not up within a minute")
    stack = LocalStack(process, http, f"http://127.0.0.1:{aws_port}")
    stack.startup_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    yield stack
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)


def test_demo_profile_is_served_by_email(local_stack):
    answer = requests.get(f"{local_stack.http}/api/profiles", params={"email": DEMO_ADDRESS}, timeout=10)
    assert answer.status_code == 200
    profile = answer.json()
    assert profile["email"] == DEMO_ADDRESS
    assert profile["status"] == "subscribed"
    assert local_stack.startup_seconds < 60


def test_api_write_is_visible_through_the_aws_endpoint(local_stack):
    profile = requests.get(f"{local_stack.http}/api/profiles", params={"email": DEMO_ADDRESS}, timeout=10).json()
    answer = requests.patch(f"{local_stack.http}/api/profiles/{profile['id']}", json={"fields": {"city": "Potsdam"}},
                            headers={"If-Match": f'"{profile["version"]}"'}, timeout=10)
    assert answer.status_code == 200, answer.text
    dynamodb = local_stack.client("dynamodb")
    [table] = [name for name in dynamodb.list_tables()["TableNames"] if name.startswith("selfservice")]
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"PROFILE#{profile['id']}"}, "sk": {"S": "PROFILE"}},
                             ConsistentRead=True)["Item"]
    assert item["fields"]["M"]["city"]["M"]["value"]["S"] == "Potsdam"
    assert item["version"]["N"] == str(profile["version"] + 1)


def test_new_profile_then_self_service_link_lands_in_the_outbox(local_stack):
    created = requests.post(f"{local_stack.http}/api/profiles",
                            json={"email": "e2e.reader@example.com", "locale": "en", "fields": {"first_name": "Robin"}},
                            timeout=10)
    assert created.status_code == 201, created.text
    profile_id = created.json()["id"]
    sent = requests.post(f"{local_stack.http}/api/profiles/{profile_id}/self-service-link", timeout=10)
    assert sent.status_code == 202
    outbox = requests.get(f"{local_stack.http}/_dev/api/outbox", timeout=10).json()
    mail = next(m for m in outbox if "e2e.reader@example.com" in m["to"])
    assert mail["subject"] == "Your link to your preferences"
    assert mail["headers"]["Content-Language"] == "en"
    assert "Hello Robin" in mail["text"] and "Hello Robin" in mail["html"]
    assert f"{local_stack.http}/link?token=" in mail["text"]
    assert mail["sent_at"]
    configuration_set = local_stack.client("sesv2").get_configuration_set(ConfigurationSetName="selfservice-dev")
    assert configuration_set["ConfigurationSetName"] == "selfservice-dev", "emails go through the template's set"


def test_ctrl_c_stops_the_stack_cleanly(local_stack):
    local_stack.process.send_signal(signal.SIGINT)
    output, _ = local_stack.process.communicate(timeout=20)
    assert local_stack.process.returncode == 0, output[-2000:]
    assert "Traceback" not in output
    assert DEMO_ADDRESS not in output, "no personal data in the log"
