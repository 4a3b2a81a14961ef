"""Provisioning ``template.yaml`` into moto by the path ``sam deploy`` takes: the template made local (CodeUri
folders as InlineCode, DefinitionUri files as Definition, no layers), the SAM transform, then moto's own
CloudFormation. Types it has no model for get one here (``LOCAL_TYPES``: the API call creating each from
the properties moto resolved); properties its models ignore are resolved as stack outputs and applied
after (``IGNORED_BY_MOTO``); what it gets wrong is patched. What the local runtime needs is read back."""

import copy
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.core.common_models import CloudFormationModel
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from devstack.cfn import Template, TemplateError, load_yaml
from devstack.config import AwsClients
from devstack.patches import CLOUDFORMATION_PATCHES, install_all, uninstall_all

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRoute:  # a route of an HTTP API (``Method Path`` or ``$default``) and the function (logical id) behind it
    function: str
    method: str
    path: str
    iam_auth: bool = False

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass
class FunctionSpec:  # a function of the template and where its real handler lives
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: int = 3
    dead_letter_arn: str | None = None  # where failed asynchronous invocations go (DeadLetterConfig, OnFailure)
    max_async_retries: int = 2
    http_routes: list[HttpRoute] = field(default_factory=list)

    @property
    def handler_file(self) -> Path:
        """``app.handler`` -> ``<code_dir>/app.py``."""
        return self.code_dir.joinpath(*self.handler.rsplit(".", 1)[0].split(".")).with_suffix(".py")

    @property
    def handler_attribute(self) -> str:
        return self.handler.rsplit(".", 1)[-1]


@dataclass
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str


@dataclass
class ScheduleSpec:  # an EventBridge Scheduler schedule: moto never fires it (the console can)
    logical_id: str
    expression: str
    target_arn: str
    input: str


@dataclass
class StackResources:
    refs: dict[str, Any] = field(default_factory=dict)  # logical id -> physical id
    types: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    pipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> the pipe as DescribePipe says
    common_environment: dict[str, str] = field(default_factory=dict)  # what every function has (the Globals)

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {logical_id: self.refs[logical_id] for logical_id, kind in self.types.items() if kind == resource_type}

    def function_by_name(self, name_or_arn: str) -> FunctionSpec | None:
        """A function by name, ARN or ARN with qualifier."""
        parts = name_or_arn.split(":")
        name = parts[6] if name_or_arn.startswith("arn:") and len(parts) >= 7 else parts[0]
        return next((spec for spec in self.functions.values() if spec.name == name), None)

    @property
    def http_routes(self) -> list[HttpRoute]:
        return [route for spec in self.functions.values() for route in spec.http_routes]


# --- what moto's CloudFormation lacks ----------------------------------------------------------------------

# (clients, properties moto resolved, a name) -> Ref, or (Ref, Arn) for a resource another one names by its Arn
Creator = Callable[[AwsClients, dict[str, Any], str], str | tuple[str, str]]


def _call(service: str, operation: str, ref: str, *keep: str, arn: str = "", **rename: str) -> Creator:
    """A resource one API call creates from its properties (all, or those in ``keep``; some renamed as the
    API names them); its Ref is the property ``ref`` (else the name moto gave it), its Arn the answer's ``arn``."""

    def create(aws: AwsClients, props: dict[str, Any], name: str) -> str | tuple[str, str]:
        properties = {ref: name} | {k: v for k, v in props.items() if not keep or k in keep}
        request = {rename.get(k) or k: v for k, v in properties.items()}
        answer = getattr(aws(service), operation)(**request)
        return (str(request[rename.get(ref, ref)]), str(answer[arn])) if arn else str(request[rename.get(ref, ref)])

    return create


def _http_api(aws: AwsClients, props: dict[str, Any], name: str) -> str:
    """An HTTP API from the OpenAPI body SAM writes: an integration and a route per operation."""
    client, body = aws("apigatewayv2"), props.get("Body") or {}
    api_id = str(client.create_api(Name=name, ProtocolType="HTTP")["ApiId"])
    for path, operations in (body.get("paths") or {}).items():
        for verb, operation in operations.items():
            uri = (operation.get("x-amazon-apigateway-integration") or {}).get("uri", "")
            target = client.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri)
            method = "ANY" if verb == "x-amazon-apigateway-any-method" else verb.upper()
            iam = any("AWS_IAM" in scheme for scheme in operation.get("security") or body.get("security") or [])
            client.create_route(ApiId=api_id, RouteKey="$default" if path == "/$default" else f"{method} {path}",
                                Target=f"integrations/{target['IntegrationId']}",
                                AuthorizationType="AWS_IAM" if iam else "NONE")  # fmt: skip
    return api_id


LOCAL_TYPES: dict[str, Creator | None] = {
    "AWS::ApiGatewayV2::Api": _http_api,
    "AWS::ApiGatewayV2::Stage": _call("apigatewayv2", "create_stage", "StageName", "ApiId", "StageName"),
    "AWS::Lambda::EventInvokeConfig": _call("lambda", "put_function_event_invoke_config", "FunctionName"),
    "AWS::Pipes::Pipe": _call("pipes", "create_pipe", "Name"),  # (moto keeps it; the local runtime runs it)
    "AWS::Events::Connection": _call("events", "create_connection", "Name", arn="ConnectionArn"),
    "AWS::Events::ApiDestination": _call("events", "create_api_destination", "Name", arn="ApiDestinationArn"),
    "AWS::Scheduler::Schedule": _call("scheduler", "create_schedule", "Name"),
    "AWS::SES::ConfigurationSet": _call("sesv2", "create_configuration_set", "Name", Name="ConfigurationSetName"),
    "AWS::SES::EmailIdentity": _call("sesv2", "create_email_identity", "EmailIdentity", "EmailIdentity"),
    # Nothing to create locally: alarms and access policies act on AWS only, moto's SES v2 has no event
    # destinations, a custom domain needs an ACM certificate and DNS.
    **dict.fromkeys(("AWS::CloudWatch::Alarm", "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy",
                     "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SES::ConfigurationSetEventDestination",
                     "AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping")),
}  # fmt: skip
IGNORED_BY_MOTO: dict[tuple[str, str], tuple[str, str, str] | None] = {
    # (type, property its model ignores): (service, operation, its parameter naming the resource) applied after
    ("AWS::DynamoDB::Table", "TimeToLiveSpecification"): ("dynamodb", "update_time_to_live", "TableName"),
    ("AWS::DynamoDB::Table", "PointInTimeRecoverySpecification"): ("dynamodb", "update_continuous_backups",
                                                                   "TableName"),
    ("AWS::Lambda::Function", "DeadLetterConfig"): None,  # moto's Lambda keeps none: the local runtime does
}  # fmt: skip
STABLE_NAMES = {"AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueName"}
"""Named ``<stack>-<logical id>`` if the template names them not (CloudFormation adds a random suffix)."""
_clients: AwsClients | None = None
"""The clients of the provisioning in progress (moto calls the models from inside CreateStack)."""


class _LocalResource:
    """A resource of a ``LOCAL_TYPES`` type, as moto's CloudFormation sees it (an Arn is its only attribute)."""

    def __init__(self, ref: str | tuple[str, str]) -> None:
        self.physical_resource_id, self.arn = ref if isinstance(ref, tuple) else (ref, "")

    cloudformation_name_type = staticmethod(lambda: "")
    has_cfn_attr = classmethod(lambda cls, attribute: True)

    def get_cfn_attribute(self, attribute: str) -> str | None:
        return self.arn if attribute == "Arn" and self.arn else None


def _model(resource_type: str, create: Creator | None) -> type:
    """A CloudFormation model for moto (which finds its models among CloudFormationModel's subclasses)."""

    def create_from_cloudformation_json(cls: Any, name: str, json_: Any, account: str, region: str, **kw: Any) -> Any:
        aws = _clients or AwsClients(None, region, account)
        return cls(create(aws, json_.get("Properties") or {}, name) if create else kw["LogicalId"])

    attributes = {"__module__": __name__, "cloudformation_type": staticmethod(lambda: resource_type),
                  "create_from_cloudformation_json": classmethod(create_from_cloudformation_json)}  # fmt: skip
    return type(resource_type.replace("::", ""), (_LocalResource, CloudFormationModel), attributes)


MODELS = [_model(resource_type, create) for resource_type, create in LOCAL_TYPES.items()]


# --- provisioning --------------------------------------------------------------------------------------------


class Provisioner:
    """Creates the template's resources in moto and returns what the local runtime needs."""

    def __init__(self, template: Template, clients: AwsClients, *, stack_name: str = "selfservice-local",
                 parameter_overrides: Mapping[str, str] | None = None,
                 env_overrides: Mapping[str, str | None] | None = None):  # fmt: skip
        self.template, self.clients, self.stack_name = template, clients, stack_name
        self.parameter_overrides, self.env_overrides = dict(parameter_overrides or {}), dict(env_overrides or {})
        self.code_dirs: dict[str, Path] = {}

    def provision_all(self) -> StackResources:
        """Transform, create the stack, read back what was created."""
        global _clients  # noqa: PLW0603 - read by the models while moto creates the stack
        template, cloudformation = self.transformed(), self.clients("cloudformation")
        patches, _clients = [patch for patch in CLOUDFORMATION_PATCHES if not patch.installed], self.clients
        install_all(patches)  # (the running local stack keeps them installed)
        try:
            lists = {name: str(parameter["Default"]) for name, parameter in template.get("Parameters", {}).items()
                     if "List" in parameter.get("Type", "") and "Default" in parameter}  # fmt: skip
            # (passed explicitly: moto's CloudFormation splits a list parameter's passed value, not its Default)
            values = lists | self.parameter_overrides
            parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
            capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
            cloudformation.create_stack(StackName=self.stack_name, TemplateBody=json.dumps(template),
                                        Parameters=parameters, Capabilities=capabilities)  # fmt: skip
            known = {model.cloudformation_type() for model in CloudFormationModel.__subclasses__()}
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] not in known:
                    LOG.warning("%s (%s): not emulated locally", logical_id, resource["Type"])
            self._verify_sender()
            return self._read_back()
        finally:
            _clients = None
            uninstall_all(patches)

    def transformed(self) -> dict[str, Any]:
        """The template made local, through the SAM transform, with the local environment."""
        session = boto3.session.Session(region_name=self.clients.region)
        template: dict[str, Any] = Translator(None, Parser(), boto_session=session).translate(
            self._localised(), parameter_values=dict(self.parameter_overrides), get_managed_policy_map=dict
        )
        template["Outputs"] = {}
        for logical_id, resource in template["Resources"].items():
            props, kind = resource.setdefault("Properties", {}), resource["Type"]
            if kind == "AWS::Lambda::Function":
                variables = props.setdefault("Environment", {}).get("Variables", {}) | self.env_overrides
                props["Environment"]["Variables"] = {k: v for k, v in variables.items() if v is not None}
            for ignored in [name for (of, name) in IGNORED_BY_MOTO if of == kind and name in props]:
                template["Outputs"][f"{logical_id}{ignored}"] = {"Value": {"Fn::ToJsonString": props[ignored]}}
            if kind in STABLE_NAMES:
                props.setdefault(STABLE_NAMES[kind], f"{self.stack_name}-{logical_id}")
        return template

    def _localised(self) -> dict[str, Any]:
        document, root = copy.deepcopy(self.template.document), self.template.path.parent
        resources = document.setdefault("Resources", {})
        for logical_id, resource in list(resources.items()):
            kind, props = resource.get("Type"), resource.setdefault("Properties", {})
            if kind == "AWS::Serverless::LayerVersion":  # Lambda mounts a Python layer; locally it is its folder
                folder = (root / str(props.get("ContentUri"))).resolve()
                if any(folder.glob("*/__init__.py")) and str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))
                del resources[logical_id]
            elif kind == "AWS::Serverless::Function":
                if not isinstance(code_uri := self.template.properties(logical_id).get("CodeUri"), str):
                    raise TemplateError(f"{logical_id}: only a local CodeUri folder is supported")
                self.code_dirs[logical_id] = (root / code_uri).resolve()
                props.pop("CodeUri", None)
                props.pop("Layers", None)
                props["InlineCode"] = f"# runs in-process from {code_uri}"
            elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
                text = (path := root / props.pop("DefinitionUri")).read_text(encoding="utf-8")
                props["Definition"] = json.loads(text) if path.suffix == ".json" else load_yaml(text)
        for key in ("CodeUri", "Layers"):
            ((document.get("Globals") or {}).get("Function") or {}).pop(key, None)
        return document

    def _verify_sender(self) -> None:
        """moto's SES sends only from verified identities: the sender address and its domain."""
        spec = (self.template.document.get("Parameters") or {}).get("SenderAddress") or {}
        address = str(self.parameter_overrides.get("SenderAddress", spec.get("Default", "")))
        sesv2 = self.clients("sesv2")
        known = {item["IdentityName"] for item in sesv2.list_email_identities()["EmailIdentities"]}
        for identity in {address, address.rpartition("@")[2]} - known - {""}:
            sesv2.create_email_identity(EmailIdentity=identity)

    def _read_back(self) -> StackResources:
        cloudformation, stack = self.clients("cloudformation"), StackResources()
        for row in cloudformation.describe_stack_resources(StackName=self.stack_name)["StackResources"]:
            if "LogicalResourceId" in row:  # (moto lists resources whose condition is false too, without ids)
                stack.refs[row["LogicalResourceId"]] = row.get("PhysicalResourceId")
                stack.types[row["LogicalResourceId"]] = row["ResourceType"]
        described = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        outputs = {item["OutputKey"]: json.loads(item["OutputValue"]) for item in described.get("Outputs") or []}
        for (kind, name), call in IGNORED_BY_MOTO.items():
            for logical_id, ref in stack.of_type(kind).items():
                if call and f"{logical_id}{name}" in outputs:
                    getattr(self.clients(call[0]), call[1])(**{call[2]: ref, name: outputs[f"{logical_id}{name}"]})
        for logical_id, name in stack.of_type("AWS::Lambda::Function").items():
            dead_letter = outputs.get(f"{logical_id}DeadLetterConfig", {}).get("TargetArn")
            stack.functions[logical_id] = self._function(logical_id, name, dead_letter)
        for logical_id, arn in stack.of_type("AWS::StepFunctions::StateMachine").items():
            stack.state_machines[logical_id] = StateMachineSpec(logical_id, arn.rsplit(":", 1)[-1], arn)
        self._read_routes(stack)
        self._read_schedules(stack)
        for logical_id, name in stack.of_type("AWS::Pipes::Pipe").items():
            stack.pipes[logical_id] = self.clients("pipes").describe_pipe(Name=name)
        environments = [spec.environment for spec in stack.functions.values()]
        stack.common_environment = {k: v for k, v in (environments or [{}])[0].items()
                                    if all(e.get(k) == v for e in environments)}  # fmt: skip
        LOG.info("stack %s created in moto: %d resources", self.stack_name, len(stack.refs))
        return stack

    def _function(self, logical_id: str, name: str, dead_letter: str | None) -> FunctionSpec:
        lambda_ = self.clients("lambda")
        config = lambda_.get_function_configuration(FunctionName=name)
        try:
            invoke = lambda_.get_function_event_invoke_config(FunctionName=name)
        except ClientError:
            invoke = {}
        on_failure = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        variables = (config.get("Environment") or {}).get("Variables") or {}  # CloudFormation makes them strings:
        environment = {k: json.dumps(v) if isinstance(v, (bool, dict, list)) else str(v) for k, v in variables.items()}
        return FunctionSpec(logical_id, name, config["FunctionArn"], self.code_dirs[logical_id], config["Handler"],
                            environment, config["MemorySize"], config["Timeout"], on_failure or dead_letter,
                            invoke.get("MaximumRetryAttempts", 2))  # fmt: skip

    def _read_routes(self, stack: StackResources) -> None:
        client = self.clients("apigatewayv2")
        for api in stack.of_type("AWS::ApiGatewayV2::Api").values():
            integrations = client.get_integrations(ApiId=api)["Items"]
            uris = {item["IntegrationId"]: item["IntegrationUri"] for item in integrations}
            for route in client.get_routes(ApiId=api)["Items"]:
                uri = uris.get(route.get("Target", "").removeprefix("integrations/"), "")
                method, _, path = route["RouteKey"].partition(" ")
                if spec := stack.function_by_name(uri.split("/functions/")[-1].removesuffix("/invocations")):
                    iam = route.get("AuthorizationType") == "AWS_IAM"
                    spec.http_routes.append(HttpRoute(spec.logical_id, method if path else "ANY", path or method, iam))

    def _read_schedules(self, stack: StackResources) -> None:
        for logical_id, name in stack.of_type("AWS::Scheduler::Schedule").items():
            schedule = self.clients("scheduler").get_schedule(Name=name)
            target, expression = schedule["Target"], schedule["ScheduleExpression"]
            stack.schedules[logical_id] = ScheduleSpec(logical_id, expression, target["Arn"], target.get("Input", "{}"))
