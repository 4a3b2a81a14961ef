"""The local stack builds what template.yaml declares and delivers like AWS would.

Covers: resources created in moto from the template (table with GSIs and TTL, bus,
configuration set, verified sender), the API Gateway 2.0 event the handlers receive,
EventBridge delivery to state machine, Lambda and SQS targets, Step Functions calling the
real handlers (with Retry/Catch seeing handler errors), the console and the outbox, and that the
stack answers HTTP only once it is ready.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from devstack import demo
from devstack.app import MOTO_CONFIG, RunningStack, start
from devstack.cfn import Template, load_yaml
from devstack.config import REPO_ROOT, AwsClients, StackConfig, default_env_overrides
from devstack.provision import HttpRoute, Provisioner
from devstack.runtime import build_event, build_response, match_route

REGION = "eu-central-1"

SAMPLE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: test
  SenderAddress:
    Type: String
    Default: sender@example.com
Globals:
  HttpApi:
    Auth:
      EnableIamAuthorizer: true
  Function:
    Runtime: python3.13
    Timeout: 10
    Environment:
      Variables:
        STAGE: !Ref Stage
        CONTENT_DIR: /opt
        RECORD_DIR: {record_dir}
        PUBLIC_BASE_URL: https://preferences.example.com
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub sample-${{Stage}}
  DeadLetters:
    Type: AWS::SQS::Queue
  Audit:
    Type: AWS::SQS::Queue
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub sample-worker-${{Stage}}
      CodeUri: functions/worker/
      Handler: app.handler
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt DeadLetters.Arn
      EventInvokeConfig:
        MaximumRetryAttempts: 0
      Events:
        Purchase:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [shop]
              detail-type: [PurchaseCompleted]
        Api:
          Type: HttpApi
          Properties:
            Path: /api/{{proxy+}}
            Method: ANY
            Auth:
              Authorizer: AWS_IAM
  PagesFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/pages/
      Handler: app.handler
      Events:
        Root:
          Type: HttpApi
          Properties:
            Path: /
            Method: GET
        Proxy:
          Type: HttpApi
          Properties:
            Path: /{{proxy+}}
            Method: ANY
  MissingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/missing/
      Handler: app.handler
      Events:
        Missing:
          Type: HttpApi
          Properties:
            Path: /missing
            Method: GET
  EventReviewStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachines/review.asl.json
      DefinitionSubstitutions:
        WorkerFunctionArn: !GetAtt WorkerFunction.Arn
      Events:
        Purchase:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [shop]
  PeriodicReviewStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachines/periodic.asl.json
      DefinitionSubstitutions:
        WorkerFunctionArn: !GetAtt WorkerFunction.Arn
        MapExecutionType: EXPRESS
      Events:
        Every6Months:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(180 days)
  AuditRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern:
        source: [customer-service]
      Targets:
        - Id: AuditQueue
          Arn: !GetAtt Audit.Arn
        - Id: Worker
          Arn: !GetAtt WorkerFunction.Arn
          InputTransformer:
            InputPathsMap:
              request: $.detail.requestId
            InputTemplate: '{{"closed": <request>, "note": "request <request> closed"}}'
"""

WORKER = """\
import json, os, pathlib

def handler(event, context):
    detail = event.get("detail", {}) if isinstance(event, dict) else {}
    if isinstance(event, dict) and (event.get("fail") or detail.get("fail")):
        raise ValueError("asked to fail")
    record = {"event": event, "function": context.function_name, "stage": os.environ.get("STAGE"),
              "content_dir": os.environ.get("CONTENT_DIR"),
              "remaining": context.get_remaining_time_in_millis()}
    # Written under another name, then renamed: a test reading the folder never sees half a file
    # (state machine executions run on their own threads and may still be writing).
    final = pathlib.Path(os.environ["RECORD_DIR"], context.aws_request_id + ".json")
    partial = final.with_suffix(".part")
    partial.write_text(json.dumps(record))
    partial.replace(final)
    return record
"""

PAGES = """\
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-route": event["routeKey"]},
            "cookies": ["a=1; Path=/", "b=2; Path=/"], "body": json.dumps(event)}
"""

REVIEW_ASL = {
    "StartAt": "Work",
    "States": {
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${WorkerFunctionArn}", "Payload.$": "$"},
            "ResultSelector": {"result.$": "$.Payload"},
            "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}

PERIODIC_ASL = {
    "StartAt": "Shards",
    "States": {
        "Shards": {
            "Type": "Pass",
            "Result": [{"shard": "0"}, {"shard": "1"}, {"shard": "2"}],
            "ResultPath": "$.shards",
            "Next": "EachShard",
        },
        "EachShard": {
            "Type": "Map",
            "ItemsPath": "$.shards",
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"campaign": "periodic"}},
            "MaxConcurrency": 2,
            "ToleratedFailurePercentage": 10,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "${MapExecutionType}"},
                "StartAt": "Select",
                "States": {
                    "Select": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "${WorkerFunctionArn}", "Payload.$": "$"},
                        "OutputPath": "$.Payload.event",
                        "End": True,
                    }
                },
            },
            "End": True,
        },
    },
}


def _write_sample(root: Path) -> Path:
    record_dir = root / "records"
    record_dir.mkdir()
    (root / "functions" / "worker").mkdir(parents=True)
    (root / "functions" / "pages").mkdir(parents=True)
    (root / "functions" / "missing").mkdir(parents=True)
    (root / "functions" / "worker" / "app.py").write_text(WORKER)
    (root / "functions" / "pages" / "app.py").write_text(PAGES)
    (root / "statemachines").mkdir()
    (root / "statemachines" / "review.asl.json").write_text(json.dumps(REVIEW_ASL))
    (root / "statemachines" / "periodic.asl.json").write_text(json.dumps(PERIODIC_ASL))
    template = root / "template.yaml"
    template.write_text(SAMPLE_TEMPLATE.format(record_dir=record_dir))
    return template


def _records(stack: RunningStack) -> list[dict[str, Any]]:
    record_dir = Path(stack.resources.functions["WorkerFunction"].environment["RECORD_DIR"])
    return [json.loads(path.read_text()) for path in sorted(record_dir.glob("*.json"))]


def _wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _client(stack: RunningStack, service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=stack.aws_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# ----------------------------------------------------------------- template.yaml


def test_the_project_template_is_created_in_moto() -> None:
    template = Template.load(REPO_ROOT / "template.yaml")
    with mock_aws(config=MOTO_CONFIG):
        provisioner = Provisioner(
            template,
            AwsClients(None),
            env_overrides=default_env_overrides("127.0.0.1", 3000),
        )
        resources = provisioner.provision_all()

        table_name = resources.refs["ProfileTable"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {
            "ByEmail",
            "ReviewDue",
            "RequestsByStatus",
            "Audience",
            "PauseEnding",
        }
        ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

        bus = resources.refs["EventBus"]
        assert bus == "selfservice-dev"
        assert boto3.client("events", region_name=REGION).describe_event_bus(Name=bus)["Name"] == bus
        sesv2 = boto3.client("sesv2", region_name=REGION)
        assert sesv2.get_configuration_set(ConfigurationSetName="selfservice-dev")["ConfigurationSetName"]
        identities = {item["IdentityName"] for item in sesv2.list_email_identities()["EmailIdentities"]}
        assert {"service@example.com", "example.com"} <= identities

        api = resources.functions["ApiFunction"]
        assert api.name == "selfservice-api-dev"
        assert api.environment["TABLE_NAME"] == table_name
        assert api.environment["EVENT_BUS_NAME"] == bus
        assert api.environment["CONTENT_DIR"] == str(REPO_ROOT / "templates")
        assert api.environment["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
        assert "TOKEN_SECRET_PARAMETER" not in api.environment
        assert api.handler_file == REPO_ROOT / "functions" / "api" / "app.py"
        assert [(r.route_key, r.iam_auth) for r in api.http_routes] == [("ANY /api/{proxy+}", True)]
        configured = boto3.client("lambda", region_name=REGION).get_function(FunctionName=api.name)
        assert configured["Configuration"]["Environment"]["Variables"]["TABLE_NAME"] == table_name


def test_every_resource_of_the_template_is_created_or_skipped_on_purpose(caplog: pytest.LogCaptureFixture) -> None:
    """A resource type the local stack does not know (say a new one in template.yaml) is a warning
    here: it must be created in moto or listed as not needed locally, never silently ignored."""
    with mock_aws(config=MOTO_CONFIG), caplog.at_level("INFO", logger="devstack.provision"):
        Provisioner(
            Template.load(REPO_ROOT / "template.yaml"),
            AwsClients(None),
            env_overrides=default_env_overrides("127.0.0.1", 3000),
        ).provision_all()
    unknown = [record.getMessage() for record in caplog.records if "not emulated locally" in record.getMessage()]
    assert not unknown, unknown


def test_short_form_tags_become_intrinsics() -> None:
    document = load_yaml("a: !Ref X\nb: !GetAtt T.Arn\nc: !Sub '${A}-x'\nd: !Join [',', [!Ref Y, z]]\n")
    assert document == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["T", "Arn"]},
        "c": {"Fn::Sub": "${A}-x"},
        "d": {"Fn::Join": [",", [{"Ref": "Y"}, "z"]]},
    }


# --------------------------------------------------------------------- gateway


def _request(path: str, method: str = "GET", **kwargs: Any) -> Request:
    builder = EnvironBuilder(path=path, method=method, base_url="http://127.0.0.1:3000", **kwargs)
    return Request(builder.get_environ())


ROUTES = [
    HttpRoute("Api", "ANY", "/api/{proxy+}", iam_auth=True),
    HttpRoute("Web", "ANY", "/{proxy+}"),
    HttpRoute("Web", "GET", "/"),
    HttpRoute("Web", "POST", "/unsubscribe/one-click"),
]


@pytest.mark.parametrize(
    ("method", "path", "route_key", "proxy"),
    [
        ("GET", "/api/profiles/abc", "ANY /api/{proxy+}", "profiles/abc"),
        ("GET", "/settings/topics", "ANY /{proxy+}", "settings/topics"),
        ("GET", "/", "GET /", None),
        ("POST", "/unsubscribe/one-click", "POST /unsubscribe/one-click", None),
        ("GET", "/unsubscribe/one-click", "ANY /{proxy+}", "unsubscribe/one-click"),
    ],
)
def test_the_most_specific_route_wins(method: str, path: str, route_key: str, proxy: str | None) -> None:
    match = match_route(ROUTES, method, path)
    assert match is not None
    assert match.route.route_key == route_key
    assert match.path_parameters.get("proxy") == proxy


def test_no_route_and_default_route() -> None:
    assert match_route(ROUTES[2:3], "POST", "/") is None
    default = HttpRoute("Web", "ANY", "$default")
    match = match_route([*ROUTES[2:3], default], "POST", "/")
    assert match is not None
    assert match.route.route_key == "$default"


def test_a_request_becomes_a_payload_2_0_event() -> None:
    request = _request(
        "/api/profiles",
        method="POST",
        query_string="email=a%40example.com&tag=x&tag=y",
        headers={"Cookie": "session=abc; lang=de", "User-Agent": "pytest", "X-Multi": "1"},
        data=json.dumps({"email": "a@example.com"}),
        content_type="application/json",
    )
    match = match_route(ROUTES, request.method, request.path)
    assert match is not None
    event = build_event(request, match)

    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["rawPath"] == "/api/profiles"
    assert event["rawQueryString"] == "email=a%40example.com&tag=x&tag=y"
    assert event["queryStringParameters"] == {"email": "a@example.com", "tag": "x,y"}
    assert event["cookies"] == ["session=abc", "lang=de"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["user-agent"] == "pytest"
    assert event["headers"]["content-type"] == "application/json"
    assert event["pathParameters"] == {"proxy": "profiles"}
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"email": "a@example.com"}
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/api/profiles",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert context["stage"] == "$default"
    assert context["routeKey"] == "ANY /api/{proxy+}"
    assert context["accountId"] == "123456789012"
    assert context["authorizer"]["iam"]["accountId"] == "123456789012"
    assert isinstance(context["timeEpoch"], int)


def test_forms_and_binary_bodies_arrive_base64_encoded() -> None:
    request = _request("/settings", method="POST", data={"topic": "news"})
    match = match_route(ROUTES, request.method, request.path)
    assert match is not None
    event = build_event(request, match)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"topic=news"
    assert "queryStringParameters" not in event


def test_handler_results_become_responses() -> None:
    response = build_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png"},
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status_code == 201
    assert response.get_data() == b"\x89PNG"
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]

    plain = build_response({"ok": True})
    assert plain.status_code == 200
    assert plain.content_type == "application/json"
    assert json.loads(plain.get_data()) == {"ok": True}


# ------------------------------------------------------------ a running stack


@pytest.fixture(scope="class")
def sample_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    template = _write_sample(tmp_path_factory.mktemp("sample"))
    config = StackConfig(http_port=0, aws_port=0, template_path=template, seed=False, announce=False)
    stack = start(config=config)
    try:
        yield stack
    finally:
        stack.stop()


class TestSampleStack:
    def test_http_requests_reach_the_handler_as_2_0_events(self, sample_stack: RunningStack) -> None:
        url = f"{sample_stack.http_url}/hello/world?x=1&x=2"
        response = requests.get(url, cookies={"s": "1"}, timeout=10)
        assert response.status_code == 200
        event = response.json()
        assert event["routeKey"] == "ANY /{proxy+}"
        assert event["pathParameters"] == {"proxy": "hello/world"}
        assert event["queryStringParameters"] == {"x": "1,2"}
        assert event["cookies"] == ["s=1"]
        assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
        root = requests.get(f"{sample_stack.http_url}/", timeout=10)
        assert root.headers["x-route"] == "GET /"

    def test_unknown_paths_and_missing_handlers_answer_json(self, sample_stack: RunningStack) -> None:
        missing = requests.get(f"{sample_stack.http_url}/missing", timeout=10)
        assert missing.status_code == 502
        assert "not found" in missing.json()["detail"]
        # POST / has no route of its own and /{proxy+} needs at least one segment.
        nothing = requests.post(f"{sample_stack.http_url}/", timeout=10)
        assert nothing.status_code == 404
        assert nothing.json() == {"message": "Not Found"}

    def test_lambda_invoke_runs_the_handler_with_its_environment(self, sample_stack: RunningStack) -> None:
        response = _client(sample_stack, "lambda").invoke(
            FunctionName="sample-worker-test", Payload=json.dumps({"hello": "world"})
        )
        assert "FunctionError" not in response
        result = json.loads(response["Payload"].read())
        assert result["event"] == {"hello": "world"}
        assert result["function"] == "sample-worker-test"
        assert result["stage"] == "test"
        assert result["content_dir"] == str(REPO_ROOT / "templates")
        assert 0 < result["remaining"] <= 10_000

        lambda_client = _client(sample_stack, "lambda")
        failed = lambda_client.invoke(FunctionName="sample-worker-test", Payload='{"fail": 1}')
        assert failed["FunctionError"] == "Unhandled"
        assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"

    def test_state_machines_call_handlers_and_catch_their_errors(self, sample_stack: RunningStack) -> None:
        sfn = _client(sample_stack, "stepfunctions")
        arn = sample_stack.resources.state_machines["EventReviewStateMachine"].arn
        ok = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": 1}))["executionArn"]
        failing = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"fail": True}))["executionArn"]
        sample_stack.wait_for_executions()
        ok_output = json.loads(sfn.describe_execution(executionArn=ok)["output"])
        assert ok_output["result"]["event"] == {"n": 1}
        caught = sfn.describe_execution(executionArn=failing)
        assert caught["status"] == "SUCCEEDED"
        assert json.loads(caught["output"])["error"]["Error"] == "ValueError"

    def test_the_periodic_run_now_runs_a_batched_distributed_map(self, sample_stack: RunningStack) -> None:
        started = requests.post(f"{sample_stack.console_url}api/periodic", timeout=10).json()["executionArns"]
        assert len(started) == 1
        sample_stack.wait_for_executions()
        sfn = _client(sample_stack, "stepfunctions")
        execution = sfn.describe_execution(executionArn=started[0])
        assert execution["status"] == "SUCCEEDED"
        assert json.loads(execution["input"]) == {}
        assert json.loads(execution["output"]) == [
            {"Items": [{"shard": "0"}, {"shard": "1"}], "BatchInput": {"campaign": "periodic"}},
            {"Items": [{"shard": "2"}], "BatchInput": {"campaign": "periodic"}},
        ]

    def test_put_events_reaches_state_machine_lambda_sqs_targets(self, sample_stack: RunningStack) -> None:
        events = _client(sample_stack, "events")
        detail = {"orderId": "o-1", "email": "someone@example.com", "occurredAt": "2024-05-01T10:00:00Z"}
        response = events.put_events(
            Entries=[
                {
                    "EventBusName": "sample-test",
                    "Source": "shop",
                    "DetailType": "PurchaseCompleted",
                    "Detail": json.dumps(detail),
                },
                {
                    "EventBusName": "sample-test",
                    "Source": "customer-service",
                    "DetailType": "ServiceRequestClosed",
                    "Detail": json.dumps({"requestId": "r-9", "email": "x@example.com"}),
                },
            ]
        )
        assert response["FailedEntryCount"] == 0
        sample_stack.drain()

        worker_events = [record["event"] for record in _records(sample_stack)]
        # This test's purchase: the class's other tests share the stack and may have emitted one before.
        purchase = next(e for e in worker_events if e.get("detail", {}).get("orderId") == detail["orderId"])
        assert purchase["source"] == "shop"
        assert purchase["detail"] == detail
        assert purchase["account"] == "123456789012"
        assert purchase["region"] == REGION
        assert purchase["time"].endswith("Z")
        assert {"version", "id", "resources"} <= purchase.keys()
        assert {"closed": "r-9", "note": "request r-9 closed"} in worker_events

        executions = sample_stack.wait_for_executions()
        sfn = _client(sample_stack, "stepfunctions")
        review = [e for e in executions if e["stateMachine"] == "EventReviewStateMachine"]
        inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in review]
        assert any(i.get("detail") == detail and i["detail-type"] == "PurchaseCompleted" for i in inputs)

        sqs = _client(sample_stack, "sqs")
        queue_url = sample_stack.resources.refs["Audit"]
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert json.loads(messages[0]["Body"])["detail"]["requestId"] == "r-9"

    def test_failed_async_invocations_go_to_the_dead_letter_queue(self, sample_stack: RunningStack) -> None:
        _client(sample_stack, "events").put_events(
            Entries=[
                {
                    "EventBusName": "sample-test",
                    "Source": "shop",
                    "DetailType": "PurchaseCompleted",
                    "Detail": json.dumps({"orderId": "o-2", "fail": True}),
                }
            ]
        )
        sample_stack.drain()
        sqs = _client(sample_stack, "sqs")
        messages = _wait_for(
            lambda: sqs.receive_message(QueueUrl=sample_stack.resources.refs["DeadLetters"]).get("Messages")
        )
        assert json.loads(messages[0]["Body"])["detail"]["orderId"] == "o-2"

    def test_the_console_emits_a_shop_purchase_and_runs_schedules(self, sample_stack: RunningStack) -> None:
        page = requests.get(sample_stack.console_url, timeout=10)
        assert page.status_code == 200
        assert "Run periodic review now" in page.text
        assert "Emit shop purchase" in page.text

        emitted = requests.post(
            f"{sample_stack.console_url}api/purchase", json={"email": "buyer@example.com"}, timeout=10
        ).json()
        sample_stack.drain()
        orders = [r["event"].get("detail", {}).get("orderId") for r in _records(sample_stack)]
        assert emitted["orderId"] in orders

        run = requests.post(
            f"{sample_stack.console_url}actions/schedule/PeriodicReviewStateMachineEvery6Months",
            timeout=10,
            allow_redirects=False,
        )
        assert run.status_code == 303
        executions = sample_stack.wait_for_executions()
        assert all(e["status"] == "SUCCEEDED" for e in executions if e["stateMachine"].startswith("Periodic"))
        listed = requests.get(f"{sample_stack.console_url}api/executions", timeout=10).json()
        assert {e["executionArn"] for e in listed} == {e["executionArn"] for e in executions}


# ------------------------------------------------------------------ readiness


def test_the_http_port_refuses_requests_until_the_demo_data_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` serves only when it is ready: while the resources are created and the demo data is
    written, the HTTP port is taken but refuses every connection; the first answer has the data."""
    seeding, written = threading.Event(), threading.Event()

    def slow_seed() -> list[dict[str, Any]]:
        seeding.set()
        assert written.wait(60)
        return [{"email": "demo@example.com"}]

    monkeypatch.setattr(demo, "seed_demo_profiles", slow_seed)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = StackConfig(http_port=port, aws_port=0, template_path=_write_sample(tmp_path), announce=False)
    started: dict[str, RunningStack] = {}
    starting = threading.Thread(target=lambda: started.update(stack=start(config)))
    starting.start()
    try:
        assert seeding.wait(120), "the stack never came to write its demo data"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        written.set()
        starting.join(timeout=60)
    stack = started["stack"]
    try:
        assert requests.get(f"{stack.console_url}api/demo", timeout=10).json() == [{"email": "demo@example.com"}]
    finally:
        stack.stop()


# ------------------------------------------------------- the project's own stack


@pytest.fixture(scope="class")
def project_stack() -> Iterator[RunningStack]:
    stack = start(config=StackConfig(http_port=0, aws_port=0, seed=False, announce=False))
    try:
        yield stack
    finally:
        stack.stop()


class TestProjectStack:
    def test_raw_emails_show_up_in_the_outbox(self, project_stack: RunningStack) -> None:
        message = EmailMessage()
        message["From"] = "Service <service@example.com>"
        message["To"] = "customer@example.org"
        message["Subject"] = "Your link"
        message["List-Unsubscribe"] = "<https://preferences.example.com/u>"
        message.set_content("text part")
        html = '<html><head></head><body><p>Open <a href="https://preferences.example.com/l">it</a></p></body></html>'
        message.add_alternative(html, subtype="html")
        _client(project_stack, "sesv2").send_email(
            FromEmailAddress="service@example.com",
            Destination={"ToAddresses": ["customer@example.org"]},
            Content={"Raw": {"Data": message.as_bytes()}},
        )

        outbox = requests.get(f"{project_stack.console_url}api/outbox", timeout=10).json()
        assert len(outbox) == 1
        email = outbox[0]
        assert email["to"] == ["customer@example.org"]
        assert email["subject"] == "Your link"
        assert email["headers"]["List-Unsubscribe"] == "<https://preferences.example.com/u>"
        assert email["html"].strip() == html
        assert email["text"].strip() == "text part"
        assert email["links"] == ["https://preferences.example.com/l"]
        assert email["sent_at"]
        detail = requests.get(f"{project_stack.console_url}outbox/{email['message_id']}", timeout=10)
        escaped_srcdoc = 'srcdoc="&lt;html&gt;&lt;head&gt;&lt;base target=&#34;_blank&#34;&gt;&lt;/head&gt;'
        assert escaped_srcdoc in detail.text

        cleared = requests.delete(f"{project_stack.console_url}api/outbox", timeout=10).json()
        assert cleared == {"cleared": 1}
        assert requests.get(f"{project_stack.console_url}api/outbox", timeout=10).json() == []

    def test_the_console_refuses_cross_origin_posts(self, project_stack: RunningStack) -> None:
        response = requests.post(
            f"{project_stack.console_url}api/outbox/clear",
            headers={"Origin": "https://evil.example"},
            timeout=10,
        )
        assert response.status_code == 403


def test_a_webhook_with_the_default_event_types_is_created_in_moto() -> None:
    """moto splits a list parameter's passed value but not its Default: the local stack passes it."""
    with mock_aws(config=MOTO_CONFIG):
        Provisioner(
            Template.load(REPO_ROOT / "template.yaml"),
            AwsClients(None),
            parameter_overrides={
                "WebhookEndpoint": "https://crm.example.com/hooks",
                "WebhookSecretName": "selfservice/webhook",
            },
            env_overrides=default_env_overrides("127.0.0.1", 3000),
        ).provision_all()
        events = boto3.client("events", region_name=REGION)
        rule = events.describe_rule(Name="selfservice-webhook-dev", EventBusName="selfservice-dev")
        assert json.loads(rule["EventPattern"])["detail-type"] == [
            "ProfileChanged", "Subscribed", "Unsubscribed", "RequestSubmitted", "RequestUpdated", "RequestClosed",
        ]  # fmt: skip
        [target] = events.list_targets_by_rule(Rule="selfservice-webhook-dev", EventBusName="selfservice-dev")[
            "Targets"
        ]
        [destination] = events.list_api_destinations()["ApiDestinations"]
        assert target["Arn"] == destination["ApiDestinationArn"]
