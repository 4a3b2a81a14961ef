"""Static checks of ``template.yaml``: what CloudFormation, SAM and an operator would reject.

* cfn-lint finds no errors (for the deployment region);
* the SAM transform runs offline and yields the expected CloudFormation resources;
* least privilege: no wildcard actions or ``Resource: "*"`` except where AWS requires them;
* operability: log groups with a retention, a recoverable table with the indexes the code queries,
  and the Powertools settings every function needs.

Every function of the template is checked, whatever functions the template has.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from samtranslator.translator.transform import transform

from devstack.cfn import load_template

REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPOSITORY / "template.yaml"
SHARED = REPOSITORY / "layers" / "shared" / "selfservice"
REGION = "eu-central-1"

# The one statement that may say ``Resource: "*"``, and only in a state machine's role: Step Functions
# sets up its execution log delivery (the ``Logging`` of a state machine) with these CloudWatch Logs
# calls, and AWS accepts them only with ``"*"`` (log delivery has no resource-level permissions).
# Exactly this set: anything more in such a statement would be an unscoped grant.
STEP_FUNCTIONS_LOG_DELIVERY_ACTIONS = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)

# The other: an SMS to a phone number. SNS has no ARN for a phone number, so ``sns:Publish`` to one is
# authorised on ``"*"`` only; allowed when the same policy denies ``sns:Publish`` on every topic
# (``arn:<partition>:sns:*:*:*``), which leaves exactly the phone numbers.
SMS_TO_PHONE_NUMBERS = ["sns:Publish"]


def _denies_every_topic(document: dict[str, Any]) -> bool:
    for statement in _as_list(document.get("Statement", [])):
        resources = _as_list(statement.get("Resource", []))
        subs = [_as_list(r["Fn::Sub"])[0] if isinstance(r, dict) and "Fn::Sub" in r else r for r in resources]
        if (
            statement.get("Effect") == "Deny"
            and _as_list(statement.get("Action", [])) == SMS_TO_PHONE_NUMBERS
            and subs == ["arn:${AWS::Partition}:sns:*:*:*"]
        ):
            return True
    return False


# AWS managed policies SAM attaches to every role it generates; they cannot be dropped without
# replacing SAM's role by a hand-written one. Anything else must be an inline, scoped statement.
ACCEPTED_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "SAM attaches it to every function role (CloudWatch Logs writes)",
    "AWSXrayWriteOnlyAccess": "SAM attaches it for Tracing: Active (X-Ray has no resource-level permissions)",
}

# What the offline managed-policy loader knows: policy names a template may use in ``Policies``.
KNOWN_MANAGED_POLICY_PATHS = {
    "AWSLambdaBasicExecutionRole": "service-role/",
    "AWSLambdaVPCAccessExecutionRole": "service-role/",
    "AWSLambdaSQSQueueExecutionRole": "service-role/",
    "AWSLambdaDynamoDBExecutionRole": "service-role/",
    "AWSLambdaKinesisExecutionRole": "service-role/",
    "AWSXrayWriteOnlyAccess": "",
    "CloudWatchLambdaInsightsExecutionRolePolicy": "",
}

IAM_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in (template.get("Resources") or {}).items() if res.get("Type") in types}


FUNCTION_IDS = sorted(resources_of_type(load_template(TEMPLATE_PATH), "AWS::Serverless::Function"))


class OfflineManagedPolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader, which would list the policies through IAM."""

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/{path}{name}" for name, path in KNOWN_MANAGED_POLICY_PATHS.items()}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What ``sam package`` hands to CloudFormation: local artifact folders replaced by S3 locations."""
    result = copy.deepcopy(template)
    artifact_keys = {
        "AWS::Serverless::Function": "CodeUri",
        "AWS::Serverless::LayerVersion": "ContentUri",
        "AWS::Serverless::StateMachine": "DefinitionUri",
        "AWS::Serverless::Api": "DefinitionUri",
        "AWS::Serverless::HttpApi": "DefinitionUri",
    }
    for logical_id, resource in result.get("Resources", {}).items():
        key = artifact_keys.get(resource.get("Type", ""))
        properties = resource.get("Properties") or {}
        value = properties.get(key) if key else None
        if isinstance(value, str) and not value.startswith("s3://"):
            properties[key] = f"s3://packaged-artifacts/{logical_id}/{Path(value).name or 'artifact'}"
    if isinstance((result.get("Globals") or {}).get("Function", {}).get("CodeUri"), str):
        result["Globals"]["Function"]["CodeUri"] = "s3://packaged-artifacts/globals/code.zip"
    return result


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, computed offline (no AWS credentials or calls)."""
    loader = OfflineManagedPolicyLoader()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_REGION", REGION)
        output = transform(packaged(template), {"AWS::Region": REGION}, loader)
    assert isinstance(output, dict)
    return output


def _resource(output: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict((output.get("Resources") or {}).get(logical_id) or {})


def _ref_target(value: Any) -> str | None:
    """Logical id of ``{"Ref": X}`` or ``{"Fn::GetAtt": [X, ...]}``."""
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return str(value["Ref"])
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list):
        return str(value["Fn::GetAtt"][0])
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- cfn-lint -------------------------------------------------------------------------------------


def test_cfn_lint_finds_no_errors() -> None:
    matches = lint_file(TEMPLATE_PATH, config=ManualArgs(regions=[REGION]))
    for match in matches:
        print(f"cfn-lint {match.rule.severity} {match.rule.id} line {match.linenumber}: {match.message}")
    errors = [
        f"{match.rule.id} line {match.linenumber}: {match.message}"
        for match in matches
        if match.rule.severity == "error"
    ]
    assert not errors, (
        f"cfn-lint reports errors in template.yaml for {REGION}; CloudFormation would reject the deployment "
        "or roll it back:\n  " + "\n  ".join(errors)
    )


# --- SAM transform ----------------------------------------------------------------------------------


def test_template_has_functions() -> None:
    assert FUNCTION_IDS, "template.yaml has no AWS::Serverless::Function: nothing would be deployed to run the API"


def test_sam_transform_runs_offline(transformed: dict[str, Any]) -> None:
    assert "Transform" not in transformed, "the SAM transform left a Transform section: CloudFormation would fail"
    types = {res["Type"] for res in transformed["Resources"].values()}
    leftovers = sorted(t for t in types if t.startswith("AWS::Serverless::"))
    assert not leftovers, f"SAM resources were not expanded by the transform: {leftovers}"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_code_and_handler_exist(template: dict[str, Any], function_id: str) -> None:
    properties = template["Resources"][function_id].get("Properties") or {}
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    code_uri = properties.get("CodeUri", globals_function.get("CodeUri"))
    handler = str(properties.get("Handler", globals_function.get("Handler", "")))
    assert isinstance(code_uri, str), f"{function_id}: CodeUri must be a local folder that sam build packages"
    code_dir = REPOSITORY / code_uri
    assert code_dir.is_dir(), f"{function_id}: CodeUri {code_uri} does not exist; sam build would fail"
    module = handler.rpartition(".")[0]
    module_file = code_dir.joinpath(*module.split(".")).with_suffix(".py")
    assert module_file.is_file(), (
        f"{function_id}: handler {handler!r} needs {module_file.relative_to(REPOSITORY)}; "
        "every invocation would fail with Runtime.ImportModuleError"
    )


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_becomes_lambda_function_with_role(transformed: dict[str, Any], function_id: str) -> None:
    function = _resource(transformed, function_id)
    assert function.get("Type") == "AWS::Lambda::Function", (
        f"{function_id} did not become an AWS::Lambda::Function; the deployment would not contain it"
    )
    properties = function["Properties"]
    role_id = _ref_target(properties.get("Role"))
    role = _resource(transformed, role_id or "")
    assert role.get("Type") == "AWS::IAM::Role", (
        f"{function_id} has no IAM role generated from its Policies; it could not call DynamoDB, SES or the bus"
    )
    principals = [
        service
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in _as_list((statement.get("Principal") or {}).get("Service", []))
    ]
    assert "lambda.amazonaws.com" in principals, f"Lambda cannot assume {role_id}; {function_id} could not start"
    assert properties.get("TracingConfig", {}).get("Mode") == "Active", (
        f"{function_id} is not traced with X-Ray; operators would not see its calls in the service map"
    )


def test_layers_become_layer_versions(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    sam_layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    layer_versions = resources_of_type(transformed, "AWS::Lambda::LayerVersion")
    assert sam_layers, "template.yaml has no layer: the shared package and the content would be missing at run time"
    assert len(layer_versions) == len(sam_layers), (
        f"expected one AWS::Lambda::LayerVersion per SAM layer ({sorted(sam_layers)}), got {sorted(layer_versions)}"
    )
    for function_id in FUNCTION_IDS:
        layers = _resource(transformed, function_id)["Properties"].get("Layers", [])
        referenced = {_ref_target(layer) for layer in layers}
        assert referenced, f"{function_id} has no layers: the shared package and the content would be missing"
        assert referenced <= set(layer_versions), (
            f"{function_id} does not use the template's layers ({referenced}); "
            "importing the shared package or reading the catalog would fail"
        )
        assert len(referenced) == len(sam_layers), (
            f"{function_id} uses {len(referenced)} of {len(sam_layers)} layers; "
            "every function needs the shared package and the content (catalog, email templates)"
        )


def _api_operations(transformed: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(api id, path, method, operation, body) of every HTTP API route defined in an OpenAPI body."""
    for api_id, api in resources_of_type(transformed, "AWS::ApiGatewayV2::Api").items():
        body = api["Properties"].get("Body") or {}
        for path, methods in (body.get("paths") or {}).items():
            for method, operation in methods.items():
                if isinstance(operation, dict):
                    yield api_id, path, method, operation, body


def test_http_api_routes_under_api_require_iam(transformed: dict[str, Any]) -> None:
    apis = resources_of_type(transformed, "AWS::ApiGatewayV2::Api")
    assert apis, "no AWS::ApiGatewayV2::Api (HttpApi): the shop and customer service could not reach the API"
    routes = [op for op in _api_operations(transformed) if op[1] == "/api" or op[1].startswith("/api/")]
    assert routes, "the HttpApi has no /api routes: the JSON API would answer 404 for everything"
    for api_id, path, method, operation, body in routes:
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        assert "AWS_IAM" in schemes, (
            f"{api_id} {method} {path} does not require AWS_IAM: anyone on the internet could read or change "
            "customer profiles"
        )
        scheme = ((body.get("components") or {}).get("securitySchemes") or {}).get("AWS_IAM") or {}
        assert scheme.get("x-amazon-apigateway-authtype") == "awsSigv4", (
            f"{api_id}: the AWS_IAM security scheme is not SigV4; IAM authorization would not be enforced"
        )
        integration = operation.get("x-amazon-apigateway-integration") or {}
        assert integration.get("payloadFormatVersion") == "2.0", (
            f"{api_id} {method} {path}: payload format {integration.get('payloadFormatVersion')!r}; the handlers "
            "use APIGatewayHttpResolver, which expects HTTP API payload 2.0"
        )


# --- least privilege ----------------------------------------------------------------------------------


def _policy_documents(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for role_id, role in resources_of_type(transformed, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies") or []:
            yield f"{role_id}/{policy.get('PolicyName')}", policy.get("PolicyDocument") or {}
    for policy_id, policy in resources_of_type(transformed, *IAM_POLICY_TYPES).items():
        yield policy_id, policy["Properties"].get("PolicyDocument") or {}


def _is_star(value: Any) -> bool:
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = _as_list(value["Fn::Sub"])[0]
    return value == "*"


def _is_action_wildcard(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def _state_machine_role_ids(transformed: dict[str, Any]) -> set[str]:
    return {
        role_id
        for machine in resources_of_type(transformed, "AWS::StepFunctions::StateMachine").values()
        if (role_id := _ref_target(machine["Properties"].get("RoleArn")))
    }


def test_no_wildcard_permissions(transformed: dict[str, Any]) -> None:
    findings: list[str] = []
    statements = 0
    state_machine_roles = _state_machine_role_ids(transformed)
    for where, document in _policy_documents(transformed):
        for statement in _as_list(document.get("Statement", [])):
            statements += 1
            label = f"{where} statement {statement.get('Sid', f'#{statements}')}"
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                findings.append(f"{label}: Allow with NotAction/NotResource grants everything not listed")
            actions = _as_list(statement.get("Action", []))
            wild = [action for action in actions if _is_action_wildcard(action)]
            if wild:
                findings.append(f"{label}: wildcard action {wild}; list the API calls the code makes")
            if any(_is_star(resource) for resource in _as_list(statement.get("Resource", []))):
                log_delivery = set(actions) == STEP_FUNCTIONS_LOG_DELIVERY_ACTIONS
                if actions == SMS_TO_PHONE_NUMBERS and _denies_every_topic(document):
                    continue
                if not (log_delivery and where.split("/")[0] in state_machine_roles):
                    findings.append(
                        f'{label}: Resource "*" for {sorted(map(str, actions))}; scope it to the resources\' ARNs '
                        "(only a state machine's log delivery statement, and an SMS to phone numbers with every "
                        'topic denied, may use "*")'
                    )
    assert statements, "no IAM statements at all: the functions' Policies were lost in the transform"
    assert not findings, (
        "IAM grants more than the functions need; a compromised or buggy function could touch every "
        "resource of the account:\n  " + "\n  ".join(findings)
    )


def test_only_accepted_managed_policies(transformed: dict[str, Any]) -> None:
    findings = []
    for role_id, role in resources_of_type(transformed, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns") or []:
            name = arn.rsplit("/", 1)[-1] if isinstance(arn, str) else repr(arn)
            if name not in ACCEPTED_MANAGED_POLICIES:
                findings.append(f"{role_id}: {name}")
    assert not findings, (
        "roles attach managed policies beyond SAM's defaults; managed policies grant wildcards over the whole "
        "account. Replace them with inline statements scoped to this stack's resources:\n  " + "\n  ".join(findings)
    )


# --- operability ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_logs_to_own_log_group_with_retention(transformed: dict[str, Any], function_id: str) -> None:
    logging_config = _resource(transformed, function_id)["Properties"].get("LoggingConfig") or {}
    log_group_id = _ref_target(logging_config.get("LogGroup"))
    assert log_group_id, (
        f"{function_id} has no LoggingConfig.LogGroup referencing a log group of the template; Lambda would "
        "create /aws/lambda/... itself, with logs kept forever and not deleted with the stack"
    )
    log_group = _resource(transformed, log_group_id)
    assert log_group.get("Type") == "AWS::Logs::LogGroup", (
        f"{function_id}: LoggingConfig.LogGroup references {log_group_id}, which is not an AWS::Logs::LogGroup"
    )
    assert log_group["Properties"].get("RetentionInDays") is not None, (
        f"{log_group_id} (logs of {function_id}) has no RetentionInDays: logs with personal data would never expire"
    )


def test_every_log_group_has_retention(template: dict[str, Any]) -> None:
    missing = [
        lid
        for lid, res in resources_of_type(template, "AWS::Logs::LogGroup").items()
        if (res.get("Properties") or {}).get("RetentionInDays") is None
    ]
    assert not missing, f"log groups without RetentionInDays keep (personal) data forever and grow costs: {missing}"


@pytest.fixture(scope="module")
def profile_table(template: dict[str, Any]) -> dict[str, Any]:
    table = (template.get("Resources") or {}).get("ProfileTable") or {}
    assert table.get("Type") == "AWS::DynamoDB::Table", "template.yaml has no AWS::DynamoDB::Table ProfileTable"
    return table


def test_profile_table_is_on_demand_and_recoverable(profile_table: dict[str, Any]) -> None:
    properties = profile_table["Properties"]
    assert properties.get("BillingMode") == "PAY_PER_REQUEST", (
        "ProfileTable is not PAY_PER_REQUEST: provisioned capacity throttles bursts of email clicks"
    )
    pitr = properties.get("PointInTimeRecoverySpecification") or {}
    assert pitr.get("PointInTimeRecoveryEnabled") is True, (
        "ProfileTable has no point-in-time recovery: a bad deployment or mistaken write could not be undone"
    )
    assert profile_table.get("DeletionPolicy") == "Retain", (
        "ProfileTable is deleted with the stack: deleting the stack would erase every customer's profile"
    )
    assert profile_table.get("UpdateReplacePolicy") == "Retain", (
        "ProfileTable is deleted when an update replaces it: a key schema change would erase every profile"
    )


def test_profile_table_expires_items_by_ttl(profile_table: dict[str, Any]) -> None:
    ttl = profile_table["Properties"].get("TimeToLiveSpecification") or {}
    assert ttl.get("Enabled") is True, (
        "ProfileTable has no TTL: unconfirmed sign-ups and their email claims would be kept forever"
    )
    assert ttl.get("AttributeName") == "expires_at", (
        f"TTL attribute is {ttl.get('AttributeName')!r}, but the storage code writes expires_at: nothing would expire"
    )


def _key_schema(index: dict[str, Any]) -> dict[str, str]:
    return {key["KeyType"]: key["AttributeName"] for key in index.get("KeySchema", [])}


def test_profile_table_has_the_indexes_the_code_queries(profile_table: dict[str, Any]) -> None:
    properties = profile_table["Properties"]
    indexes = {index["IndexName"]: index for index in properties.get("GlobalSecondaryIndexes") or []}
    assert "ByEmail" in indexes, "ProfileTable has no ByEmail index: looking up a profile by email would fail"
    assert _key_schema(indexes["ByEmail"]) == {"HASH": "email_key"}, (
        f"ByEmail is keyed by {_key_schema(indexes['ByEmail'])}, but the code queries email_key"
    )
    assert "ReviewDue" in indexes, "ProfileTable has no ReviewDue index: the periodic profile review would fail"
    assert _key_schema(indexes["ReviewDue"]) == {"HASH": "review_shard", "RANGE": "next_review_at"}, (
        f"ReviewDue is keyed by {_key_schema(indexes['ReviewDue'])}; the review job queries each review_shard "
        "for next_review_at up to now"
    )
    defined = {a["AttributeName"]: a["AttributeType"] for a in properties.get("AttributeDefinitions", [])}
    for attribute in ("email_key", "review_shard", "next_review_at"):
        assert defined.get(attribute) == "S", f"index key {attribute} must be defined as a string attribute"


def test_globals_carry_powertools_settings(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    variables = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables")
    variables = variables or {}
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        assert variables.get(name), (
            f"Globals.Function.Environment lacks {name}: logs and metrics would have no service name or "
            "namespace, and Metrics raises on flush without a namespace"
        )
    for function_id in FUNCTION_IDS:
        environment = _resource(transformed, function_id)["Properties"].get("Environment", {}).get("Variables", {})
        for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
            assert environment.get(name), f"{function_id} ends up without {name} after the transform"


def test_every_alarm_tells_the_operators(template: dict[str, Any]) -> None:
    alarms = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {"ReviewEventDeadLetterAlarm", "SesFeedbackDeadLetterAlarm", "PeriodicReviewFailedAlarm"} <= set(alarms)
    silent = [
        logical_id
        for logical_id, alarm in alarms.items()
        if {"Ref": "OperatorAlarmTopic"} not in alarm["Properties"].get("AlarmActions", [])
    ]
    assert not silent, f"alarms nobody hears of (no action on OperatorAlarmTopic): {silent}"


def test_alarms_on_our_metrics_watch_what_the_code_emits(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    code = "".join(path.read_text() for path in [*REPOSITORY.glob("functions/*/app.py"), *SHARED.rglob("*.py")])
    ours = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == variables["POWERTOOLS_METRICS_NAMESPACE"]
    }
    assert {"ReviewRunSkippedAlarm"} <= set(ours)
    for logical_id, alarm in ours.items():
        assert f'name="{alarm["MetricName"]}"' in code, f"{logical_id} watches a metric nothing emits"
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["service"] == variables["POWERTOOLS_SERVICE_NAME"], logical_id


def test_state_machines_are_traced(template: dict[str, Any]) -> None:
    for logical_id in ("PeriodicReviewStateMachine", "EventReviewStateMachine"):
        assert template["Resources"][logical_id]["Properties"].get("Tracing") == {"Enabled": True}, logical_id


# --- conditions: what CloudFormation makes of the template for given parameter values -------------------


def _evaluate(transformed: dict[str, Any], value: Any, parameters: dict[str, str]) -> Any:
    """``value`` with ``Fn::If`` decided and parameters put in (``Ref``, ``Fn::Sub``), as CloudFormation
    would for ``parameters`` (on top of the template's defaults). Other intrinsics stay as they are."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in (transformed.get("Parameters") or {}).items()}
    values = {**defaults, **parameters}

    def condition(name: str) -> bool:
        return bool(walk(transformed["Conditions"][name]))

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(item) for item in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref" and argument in values:
                return values[argument]
            if key == "Ref" and argument == "AWS::NoValue":
                return _NO_VALUE
            if key == "Condition":
                return condition(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return walk(when_true if condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = walk(argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not walk(argument)[0]
            if key == "Fn::And":
                return all(walk(argument))
            if key == "Fn::Or":
                return any(walk(argument))
            if key == "Fn::Sub" and isinstance(argument, str):
                text = re.sub(r"\$\{([^!}][^}]*)\}", lambda m: values.get(m.group(1), m.group(0)), argument)
                return text if "${" not in text else {"Fn::Sub": text}
        walked = {key: walk(item) for key, item in node.items()}
        return {key: item for key, item in walked.items() if item is not _NO_VALUE}

    return walk(value)


_NO_VALUE = object()


def _created(transformed: dict[str, Any], logical_id: str, parameters: dict[str, str]) -> bool:
    resource = _resource(transformed, logical_id)
    condition = resource.get("Condition")
    return bool(resource) and (condition is None or _evaluate(transformed, {"Condition": condition}, parameters))


def _sub_text(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::Sub" in value:
        return str(_as_list(value["Fn::Sub"])[0])
    return value if isinstance(value, str) else None


def test_template_has_no_circular_dependency(transformed: dict[str, Any]) -> None:
    """CloudFormation refuses a template whose resources reference each other in a circle (and cfn-lint
    does not see circles through an HTTP API's OpenAPI body)."""
    resources = transformed["Resources"]

    def references(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, list):
            for item in node:
                found |= references(item)
        elif isinstance(node, dict):
            for key, argument in node.items():
                if key == "Ref" and argument in resources:
                    found.add(argument)
                elif key == "Fn::GetAtt":
                    found.add(str(_as_list(argument)[0]).split(".")[0])
                elif key == "Fn::Sub":
                    for name in re.findall(r"\$\{([^!}][^}]*)\}", str(_as_list(argument)[0])):
                        found.add(name.split(".")[0])
                found |= references(argument)
        return found & set(resources)

    graph = {
        logical_id: references(resource.get("Properties")) | set(_as_list(resource.get("DependsOn") or []))
        for logical_id, resource in resources.items()
    }
    finished: set[str] = set()

    def visit(logical_id: str, path: list[str]) -> None:
        if logical_id in path:
            cycle = " -> ".join([*path[path.index(logical_id) :], logical_id])
            pytest.fail(f"circular dependency, CloudFormation would refuse the template: {cycle}")
        if logical_id in finished:
            return
        for target in sorted(graph[logical_id]):
            visit(target, [*path, logical_id])
        finished.add(logical_id)

    for logical_id in sorted(graph):
        visit(logical_id, [])


# --- first deploy: sender identity, custom domain, links in emails -------------------------------------------


def test_sender_domain_is_an_ses_identity_with_dkim(transformed: dict[str, Any]) -> None:
    identities = resources_of_type(transformed, "AWS::SES::EmailIdentity")
    assert list(identities) == ["SenderIdentity"], "the sender's domain is not an SES identity of the template"
    properties = identities["SenderIdentity"]["Properties"]
    assert _evaluate(transformed, properties["EmailIdentity"], {}) == {
        "Fn::Select": [1, {"Fn::Split": ["@", "service@example.com"]}]
    }, "the identity must be the domain of SenderAddress (the From address of every email)"
    assert properties["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert _ref_target(properties["ConfigurationSetAttributes"]["ConfigurationSetName"]) == "EmailConfigurationSet"
    outputs = transformed["Outputs"]
    for number in (1, 2, 3):
        value = _sub_text(outputs[f"SenderDkimRecord{number}"]["Value"]) or ""
        assert f"SenderIdentity.DkimDNSTokenName{number}" in value, "the operator must see the DKIM records to add"
        assert f"SenderIdentity.DkimDNSTokenValue{number}" in value
    assert not _created(transformed, "SenderIdentity", {"CreateSenderIdentity": "false"}), (
        "a second stage in the same account and region must be able to use the identity the first one created"
    )
    assert "MailFromAttributes" not in _evaluate(transformed, properties, {})
    mail_from = _evaluate(transformed, properties, {"MailFromDomain": "mail.example.com"})["MailFromAttributes"]
    assert mail_from == {"MailFromDomain": "mail.example.com", "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}


def test_ses_suppresses_bounces_and_complaints(transformed: dict[str, Any]) -> None:
    properties = _resource(transformed, "EmailConfigurationSet")["Properties"]
    assert sorted(properties["SuppressionOptions"]["SuppressedReasons"]) == ["BOUNCE", "COMPLAINT"]


def test_custom_domain_maps_to_the_http_api(transformed: dict[str, Any]) -> None:
    with_domain = {
        "DomainName": "preferences.example.com",
        "CertificateArn": "arn:aws:acm:eu-central-1:1:certificate/x",
    }
    assert not _created(transformed, "CustomDomain", {}), "without DomainName no custom domain is created"
    assert _created(transformed, "CustomDomain", with_domain)
    assert _created(transformed, "CustomDomainMapping", with_domain)
    domain = _evaluate(transformed, _resource(transformed, "CustomDomain")["Properties"], with_domain)
    assert domain["DomainName"] == "preferences.example.com"
    assert domain["DomainNameConfigurations"] == [
        {"CertificateArn": with_domain["CertificateArn"], "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}
    ]
    mapping = _resource(transformed, "CustomDomainMapping")["Properties"]
    assert _ref_target(mapping["ApiId"]) == "HttpApi"
    stage = _resource(transformed, _ref_target(mapping["Stage"]) or "")
    assert stage.get("Type") == "AWS::ApiGatewayV2::Stage", (
        "the mapping must reference the HTTP API's stage resource, or CloudFormation may map a stage not yet there"
    )
    assert stage["Properties"]["StageName"] == "$default"
    assert _ref_target(transformed["Outputs"]["CustomDomainTarget"]["Value"]) == "CustomDomain"
    rule = transformed["Rules"]["CustomDomainNeedsCertificate"]
    assert _evaluate(transformed, rule["RuleCondition"], {"DomainName": "x.example.com"}) is True
    assert _evaluate(transformed, rule["Assertions"][0]["Assert"], {"DomainName": "x.example.com"}) is False, (
        "DomainName without CertificateArn must fail before anything is created"
    )


def _base_urls(transformed: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    return {
        function_id: _evaluate(
            transformed, _resource(transformed, function_id)["Properties"]["Environment"]["Variables"], parameters
        ).get("PUBLIC_BASE_URL")
        for function_id in FUNCTION_IDS
    }


def _behind_the_api(transformed: dict[str, Any]) -> set[str]:
    body = json.dumps(
        [api["Properties"].get("Body") for api in resources_of_type(transformed, "AWS::ApiGatewayV2::Api").values()]
    )
    return {function_id for function_id in FUNCTION_IDS if f"${{{function_id}.Arn}}" in body}


def test_links_in_emails_use_the_custom_domain_else_the_base_url_else_the_api(transformed: dict[str, Any]) -> None:
    behind = _behind_the_api(transformed)
    assert behind == {"ApiFunction", "WebFunction"}
    custom = _base_urls(transformed, {"DomainName": "preferences.example.com"})
    assert set(custom.values()) == {"https://preferences.example.com"}, custom
    explicit = _base_urls(transformed, {"PublicBaseUrl": "https://cdn.example.com"})
    assert set(explicit.values()) == {"https://cdn.example.com"}, explicit
    first_deploy = _base_urls(transformed, {})
    for function_id, value in first_deploy.items():
        if function_id in behind:
            # Empty: the function uses the domain the request came in through (selfservice.origin).
            assert value == "", f"{function_id} is behind the API and cannot reference its URL (a cycle)"
        else:
            assert _sub_text(value) == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}", (
                f"{function_id} sends emails without a request to take the domain from; it needs the API's URL"
            )


# --- operations ---------------------------------------------------------------------------------------------


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """(namespace, name, dimensions) of every metric an alarm watches, single metric or metric math."""
    properties = alarm["Properties"]
    if properties.get("MetricName"):
        return [properties]
    return [query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query]


def _watched(transformed: dict[str, Any], namespace: str, metric: str, dimension: str) -> set[str]:
    """Logical ids whose ``metric`` some alarm watches (by ``Ref``/``GetAtt`` in ``dimension``)."""
    found: set[str] = set()
    for alarm in resources_of_type(transformed, "AWS::CloudWatch::Alarm").values():
        for watched in _alarm_metrics(alarm):
            if watched.get("Namespace") == namespace and watched.get("MetricName") == metric:
                for item in watched.get("Dimensions", []):
                    if item["Name"] == dimension and (target := _ref_target(item["Value"])):
                        found.add(target)
    return found


def test_every_alarm_notifies_the_encrypted_operator_topic(transformed: dict[str, Any]) -> None:
    alarms = resources_of_type(transformed, "AWS::CloudWatch::Alarm")
    silent = [
        lid
        for lid, alarm in alarms.items()
        if {"Ref": "OperatorAlarmTopic"} not in alarm["Properties"].get("AlarmActions", [])
    ]
    assert not silent, f"alarms nobody hears of: {silent}"
    topic = _resource(transformed, "OperatorAlarmTopic")["Properties"]
    key_id = _ref_target(topic.get("KmsMasterKeyId"))
    key = _resource(transformed, key_id or "")
    assert key.get("Type") == "AWS::KMS::Key", (
        "the alarm topic is not encrypted with a key of the template (CloudWatch cannot use alias/aws/sns)"
    )
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch_may = {
        action
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Effect"] == "Allow"
        and statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}
        for action in _as_list(statement["Action"])
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= cloudwatch_may, (
        "CloudWatch (of this account) may not use the topic's key: every alarm notification would be dropped"
    )
    publishers = [
        statement
        for policy in resources_of_type(transformed, "AWS::SNS::TopicPolicy").values()
        if {"Ref": "OperatorAlarmTopic"} in policy["Properties"]["Topics"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and statement["Action"] == "sns:Publish"
    ]
    assert publishers, "the topic policy must let CloudWatch alarms publish"
    assert all(s["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"} for s in publishers), (
        "only CloudWatch alarms of this account may publish"
    )


def test_alarms_cover_functions_state_machines_api_ses_and_every_queue(transformed: dict[str, Any]) -> None:
    functions = set(resources_of_type(transformed, "AWS::Lambda::Function"))
    for metric in ("Errors", "Throttles"):
        unwatched = functions - _watched(transformed, "AWS/Lambda", metric, "FunctionName")
        assert not unwatched, f"no alarm on {metric} of {sorted(unwatched)}"
    machines = set(resources_of_type(transformed, "AWS::StepFunctions::StateMachine"))
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        unwatched = machines - _watched(transformed, "AWS/States", metric, "StateMachineArn")
        assert not unwatched, f"no alarm on {metric} of {sorted(unwatched)}"
    assert {"HttpApi"} <= _watched(transformed, "AWS/ApiGateway", "5xx", "ApiId")
    assert {"HttpApi"} <= _watched(transformed, "AWS/ApiGateway", "Count", "ApiId"), "5xx needs Count for a rate"
    queues = set(resources_of_type(transformed, "AWS::SQS::Queue"))
    unwatched = queues - _watched(transformed, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    assert not unwatched, f"dead-letter queues nobody is told about: {sorted(unwatched)}"
    reputation = {
        alarm["Properties"]["MetricName"]: alarm["Properties"]
        for alarm in resources_of_type(transformed, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SES"
    }
    # The metrics are fractions; AWS reviews an account at 5 % bounces and 0.1 % complaints.
    assert 0 < reputation["Reputation.BounceRate"]["Threshold"] <= 0.025
    assert 0 < reputation["Reputation.ComplaintRate"]["Threshold"] <= 0.0005
    assert not _resource(transformed, "SesBounceRateAlarm")["Properties"].get("Dimensions"), "account-wide metric"


def test_failed_scheduled_runs_are_kept(transformed: dict[str, Any]) -> None:
    target = _resource(transformed, "PeriodicReviewSchedule")["Properties"]["Target"]
    queue_id = _ref_target(target.get("DeadLetterConfig", {}).get("Arn"))
    assert _resource(transformed, queue_id or "").get("Type") == "AWS::SQS::Queue", (
        "the schedule has no dead-letter queue"
    )
    # EventBridge Scheduler delivers dead letters with the schedule's role, not through a queue policy.
    role = _resource(transformed, _ref_target(target["RoleArn"]) or "")
    grants = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Action"] == "sqs:SendMessage"
    ]
    assert [_ref_target(statement["Resource"]) for statement in grants] == [queue_id]


def test_every_queue_policy_names_its_sources(transformed: dict[str, Any]) -> None:
    policies = resources_of_type(transformed, "AWS::SQS::QueuePolicy")
    assert policies
    for policy_id, policy in policies.items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Effect") != "Allow":
                continue
            condition = statement.get("Condition") or {}
            sources = (condition.get("ArnEquals") or condition.get("ArnLike") or {}).get("aws:SourceArn")
            assert sources, (
                f"{policy_id} {statement.get('Sid')}: no aws:SourceArn condition, so any rule of any account "
                "could fill the queue"
            )
            for source in _as_list(sources):
                assert _resource(transformed, _ref_target(source) or "").get("Type") == "AWS::Events::Rule", (
                    f"{policy_id}: aws:SourceArn {source} is not a rule of the template"
                )


@pytest.mark.parametrize("machine_id", ["PeriodicReviewStateMachine", "EventReviewStateMachine"])
def test_state_machines_log_errors_without_execution_data(transformed: dict[str, Any], machine_id: str) -> None:
    logging_configuration = _resource(transformed, machine_id)["Properties"].get("LoggingConfiguration") or {}
    assert logging_configuration.get("Level") in ("ERROR", "ALL"), f"{machine_id} logs no failures"
    assert logging_configuration.get("IncludeExecutionData") is False, (
        f"{machine_id} would log its input and output: profile ids and addresses in the logs"
    )
    [destination] = logging_configuration["Destinations"]
    log_group = _resource(transformed, _ref_target(destination["CloudWatchLogsLogGroup"]["LogGroupArn"]) or "")
    assert log_group.get("Type") == "AWS::Logs::LogGroup"
    assert log_group["Properties"].get("RetentionInDays"), f"{machine_id}'s execution log is kept forever"
    role_id = _ref_target(_resource(transformed, machine_id)["Properties"]["RoleArn"])
    actions = {
        action
        for policy in _resource(transformed, role_id or "")["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
    }
    assert actions >= STEP_FUNCTIONS_LOG_DELIVERY_ACTIONS, (
        f"{machine_id}'s role cannot set up log delivery: CloudFormation would fail to create the state machine"
    )


def test_profile_table_cannot_be_deleted_by_accident(profile_table: dict[str, Any]) -> None:
    assert profile_table["Properties"].get("DeletionProtectionEnabled") is True


def test_http_api_throttles_every_route(transformed: dict[str, Any]) -> None:
    stages = [
        stage["Properties"]
        for stage in resources_of_type(transformed, "AWS::ApiGatewayV2::Stage").values()
        if _ref_target(stage["Properties"]["ApiId"]) == "HttpApi"
    ]
    assert stages
    for stage in stages:
        settings = _evaluate(transformed, stage.get("DefaultRouteSettings") or {}, {})
        for limit in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            assert int(settings.get(limit, 0)) > 0, (
                f"the HTTP API has no default {limit}: a flood of requests would run (and bill) functions unbounded"
            )


def test_public_pages_function_reserves_its_concurrency_when_asked(transformed: dict[str, Any]) -> None:
    web = _resource(transformed, "WebFunction")["Properties"]
    assert _evaluate(transformed, web, {"WebReservedConcurrency": "50"}).get("ReservedConcurrentExecutions") == "50"
    # 0 (the default): no reservation - a new account's 10 concurrent executions leave nothing to reserve.
    assert "ReservedConcurrentExecutions" not in _evaluate(transformed, web, {})


def test_other_systems_get_scoped_access(transformed: dict[str, Any]) -> None:
    policies = resources_of_type(transformed, "AWS::IAM::ManagedPolicy")
    api = policies["ApiAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Action"], _sub_text(s["Resource"])) for s in api] == [
        (
            "execute-api:Invoke",
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/*/api/*",
        )
    ], "the API policy must allow /api/* of this stack's API only (not the pages, not other APIs)"
    for policy_id, source in (("ShopEventsPolicy", "shop"), ("CustomerServiceEventsPolicy", "customer-service")):
        [statement] = policies[policy_id]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "events:PutEvents"
        assert _ref_target(statement["Resource"]) == "EventBus"
        assert statement["Condition"] == {"StringEquals": {"events:source": source}}
    outputs = transformed["Outputs"]
    for name in ("EventBusArn", "ApiAccessPolicyArn", "ShopEventsPolicyArn", "CustomerServiceEventsPolicyArn"):
        assert name in outputs, f"output {name} missing: the other systems' teams need it"


WEBHOOK_RESOURCES = ("WebhookConnection", "WebhookDestination", "WebhookRule", "WebhookRole",
                     "WebhookDeadLetterQueue", "WebhookDeadLetterQueuePolicy", "WebhookDeadLetterAlarm")  # fmt: skip


def test_the_webhook_exists_only_when_asked_for_and_keeps_its_secret_out_of_the_template(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    assert all(resources[name].get("Condition") == "HasWebhook" for name in WEBHOOK_RESOURCES)
    assert template["Conditions"]["HasWebhook"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookEndpoint"}, ""]}]}
    assert template["Parameters"]["WebhookEndpoint"]["Default"] == "", "no webhook unless an operator sets one"
    auth = resources["WebhookConnection"]["Properties"]["AuthParameters"]["Fn::If"]
    api_key, basic = auth[1]["ApiKeyAuthParameters"], auth[2]["BasicAuthParameters"]
    secrets = [api_key["ApiKeyValue"], basic["Username"], basic["Password"]]
    assert all(value["Fn::Sub"].startswith("{{resolve:secretsmanager:${WebhookSecretName}:") for value in secrets)


def test_the_webhook_gets_the_chosen_event_types_with_retries_and_a_dead_letter_queue(
    transformed: dict[str, Any],
) -> None:
    rule = _resource(transformed, "WebhookRule")["Properties"]
    assert rule["EventPattern"] == {"source": ["self-service"], "detail-type": {"Ref": "WebhookEventTypes"}}
    [target] = rule["Targets"]
    assert _ref_target(target["Arn"]) == "WebhookDestination"
    assert _ref_target(target["DeadLetterConfig"]["Arn"]) == "WebhookDeadLetterQueue"
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    [statement] = _resource(transformed, "WebhookRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "events:InvokeApiDestination"
    assert _ref_target(statement["Resource"]) == "WebhookDestination", "the role may call this destination only"
    destination = _resource(transformed, "WebhookDestination")["Properties"]
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationEndpoint"] == {"Ref": "WebhookEndpoint"}
