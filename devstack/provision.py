"""Creating the resources of ``template.yaml`` in moto.

Every resource is created on first use (``Ref``/``GetAtt`` from another resource, or the
walk over all resources), so the dependency order follows from the template itself and
no hand-written list can drift from it. Types that need nothing locally are logged and
given stand-in physical ids so that references to them still resolve.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import zipfile
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from devstack.asl import adapt_definition_for_moto, substitute_definition
from devstack.aws import AwsClients
from devstack.cfn import NO_VALUE, Resolver, Template, TemplateError, load_yaml
from devstack.model import (
    FunctionSpec,
    HttpRoute,
    RuleSpec,
    ScheduleSpec,
    StackResources,
    StateMachineSpec,
)

LOG = logging.getLogger(__name__)

NOT_NEEDED_LOCALLY = (
    "AWS::Logs::",
    "AWS::IAM::",
    "AWS::CloudWatch::",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Api",
    "AWS::ApiGatewayV2::",
    "AWS::ApiGateway::",
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Events::Archive",
    "AWS::XRay::",
    "AWS::KMS::",
)
RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")
SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")


def env_string(value: Any) -> str:
    """CloudFormation stringifies environment values (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "The local stack runs the handler in-process from the repository.\n")
    return buffer.getvalue()


class Provisioner:
    """Builds :class:`StackResources` by creating the template's resources in moto."""

    def __init__(
        self,
        template: Template,
        clients: AwsClients,
        *,
        parameter_overrides: Mapping[str, str] | None = None,
        env_overrides: Mapping[str, str | None] | None = None,
        stack_name: str = "selfservice-local",
    ):
        self.template = template
        self.clients = clients
        self.env_overrides = dict(env_overrides or {})
        self.stack_name = stack_name
        self.resolver = Resolver(
            template,
            parameter_overrides=dict(parameter_overrides or {}),
            ref=self._ref,
            get_att=self._get_att,
            region=clients.region,
            account_id=clients.account_id,
            stack_name=stack_name,
        )
        self.resources = StackResources()
        self._done: set[str] = set()
        self._in_progress: list[str] = []
        self._roles: dict[str, str] = {}
        self.python_layer_dirs: list[Path] = []
        self._creators: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._events_rule,
            "AWS::SES::ConfigurationSet": self._configuration_set,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Topic": self._topic,
            "AWS::SSM::Parameter": self._ssm_parameter,
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
            "AWS::Scheduler::Schedule": self._scheduler_schedule,
        }

    # ------------------------------------------------------------------ driver

    def provision_all(self) -> StackResources:
        """Create every resource of the template; returns what was created."""
        self._verify_sender_identity()
        for logical_id in self.template.resources:
            self._ensure(logical_id)
        self.resources.common_environment = self._common_environment()
        return self.resources

    def _ensure(self, logical_id: str) -> None:
        if logical_id in self._done:
            return
        if logical_id in self._in_progress:
            cycle = " -> ".join([*self._in_progress, logical_id])
            raise TemplateError(f"circular reference: {cycle}")
        resource = self.template.resources[logical_id]
        resource_type = str(resource.get("Type"))
        self.resources.types[logical_id] = resource_type
        condition = resource.get("Condition")
        if condition and not self.resolver.condition(str(condition)):
            LOG.info("skip %s (condition %s is false)", logical_id, condition)
            self._done.add(logical_id)
            return
        self._in_progress.append(logical_id)
        try:
            creator = self._creators.get(resource_type)
            properties = self.template.properties(logical_id)  # with the Globals, as SAM merges them
            if creator is not None:
                creator(logical_id, properties)
            else:
                self._stand_in(logical_id, resource_type, properties)
        finally:
            self._in_progress.pop()
        self._done.add(logical_id)

    def _ref(self, logical_id: str) -> Any:
        self._ensure(logical_id)
        if logical_id not in self.resources.refs:
            raise TemplateError(f"Ref {logical_id}: resource was not created (condition false?)")
        return self.resources.refs[logical_id]

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        self._ensure(logical_id)
        attributes = self.resources.attributes.get(logical_id, {})
        if attribute not in attributes:
            raise TemplateError(f"GetAtt {logical_id}.{attribute} is not known locally")
        return attributes[attribute]

    def _resolve(self, value: Any) -> Any:
        resolved = self.resolver.resolve(value)
        return None if resolved is NO_VALUE else resolved

    def _name(self, logical_id: str, given: Any, max_length: int) -> str:
        """The resource's own name, else a deterministic stand-in for CloudFormation's."""
        if given:
            return str(self._resolve(given))
        return f"{self.stack_name}-{logical_id}"[:max_length]

    def _arn(self, service: str, resource: str, *, region: bool = True) -> str:
        region_part = self.clients.region if region else ""
        return f"arn:aws:{service}:{region_part}:{self.clients.account_id}:{resource}"

    # ------------------------------------------------------------ stand-ins

    def _stand_in(self, logical_id: str, resource_type: str, properties: dict[str, Any]) -> None:
        if resource_type.startswith(NOT_NEEDED_LOCALLY):
            LOG.info("%s (%s): nothing to create locally", logical_id, resource_type)
        else:
            LOG.warning("%s (%s): not emulated locally", logical_id, resource_type)
        if resource_type == "AWS::Logs::LogGroup":
            name = self._name(logical_id, properties.get("LogGroupName"), 512)
            self._record(logical_id, name, Arn=self._arn("logs", f"log-group:{name}:*"))
        elif resource_type in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            name = self._name(logical_id, properties.get("LayerName"), 140)
            self._record(logical_id, self._arn("lambda", f"layer:{name}:1"))
            self._remember_python_layer(logical_id, properties)
        elif resource_type in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
            self._record(logical_id, "local", ApiEndpoint="http://127.0.0.1")
        elif resource_type == "AWS::IAM::Role":
            name = self._name(logical_id, properties.get("RoleName"), 64)
            self._record(logical_id, name, Arn=self._arn("iam", f"role/{name}", region=False), RoleId=name)
        else:
            self._record(logical_id, logical_id, Arn=self._arn("local", logical_id))

    def _record(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        self.resources.refs[logical_id] = ref
        self.resources.attributes[logical_id] = attributes

    def _remember_python_layer(self, logical_id: str, properties: dict[str, Any]) -> None:
        """Lambda mounts a Python layer on ``sys.path``; locally that is its source folder."""
        metadata = self.template.resources[logical_id].get("Metadata") or {}
        content_uri = self._resolve(properties.get("ContentUri"))
        runtimes = [str(runtime) for runtime in self._resolve(properties.get("CompatibleRuntimes")) or []]
        built = str(metadata.get("BuildMethod", ""))
        # A makefile-built layer (target-platform wheels) holds Python too when its runtimes say so
        # and its folder has a package (the content layer is makefile-built too, and holds none).
        folder = (self.template.root / content_uri).resolve() if isinstance(content_uri, str) else None
        is_python = built.startswith("python") or (
            built == "makefile"
            and any(r.startswith("python") for r in runtimes)
            and folder is not None
            and any(path.is_file() for path in folder.glob("*/__init__.py"))
        )
        if is_python and folder is not None:
            self.python_layer_dirs.append(folder)

    # ------------------------------------------------------------------- data

    def _table(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self._resolve(properties)
        name = self._name(logical_id, props.get("TableName"), 255)
        billing = props.get("BillingMode", "PROVISIONED")
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": billing,
        }
        throughput = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if billing == "PROVISIONED":
            request["ProvisionedThroughput"] = throughput
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = [dict(index) for index in props.get(key) or []]
            for index in indexes:
                if billing == "PROVISIONED" and key == "GlobalSecondaryIndexes":
                    index.setdefault("ProvisionedThroughput", throughput)
                index.pop("ContributorInsightsSpecification", None)
            if indexes:
                request[key] = indexes
        if props.get("StreamSpecification"):
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb = self.clients("dynamodb")
        table = dynamodb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = props.get("PointInTimeRecoverySpecification") or {}
        if pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        self._record(
            logical_id,
            name,
            Arn=table["TableArn"],
            StreamArn=table.get("LatestStreamArn", f"{table['TableArn']}/stream/local"),
        )
        LOG.info("table %s created", logical_id)

    def _queue(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self._resolve(properties)
        fifo = bool(props.get("FifoQueue"))
        name = self._name(logical_id, props.get("QueueName"), 75)
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else env_string(value)
            for key, value in props.items()
            if key
            in (
                "DelaySeconds",
                "MaximumMessageSize",
                "MessageRetentionPeriod",
                "ReceiveMessageWaitTimeSeconds",
                "VisibilityTimeout",
                "FifoQueue",
                "ContentBasedDeduplication",
                "DeduplicationScope",
                "FifoThroughputLimit",
                "RedrivePolicy",
                "RedriveAllowPolicy",
            )
        }
        sqs = self.clients("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._record(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
        LOG.info("queue %s created", logical_id)

    def _topic(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties.get("TopicName"), 256)
        arn = self.clients("sns").create_topic(Name=name)["TopicArn"]
        self._record(logical_id, arn, TopicArn=arn, TopicName=name)
        LOG.info("topic %s created", logical_id)

    def _ssm_parameter(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self._resolve(properties)
        name = self._name(logical_id, props.get("Name"), 1011)
        self.clients("ssm").put_parameter(
            Name=name, Value=str(props.get("Value", "")), Type=props.get("Type", "String"), Overwrite=True
        )
        self._record(logical_id, name, Type=props.get("Type", "String"), Value=str(props.get("Value", "")))
        LOG.info("parameter %s created", logical_id)

    # ------------------------------------------------------------- messaging

    def _event_bus(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties.get("Name"), 256)
        arn = self.clients("events").create_event_bus(Name=name)["EventBusArn"]
        self._record(logical_id, name, Arn=arn, Name=name)
        self.resources.buses[logical_id] = name
        LOG.info("event bus %s created", logical_id)

    def _configuration_set(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties.get("Name"), 64)
        self.clients("sesv2").create_configuration_set(ConfigurationSetName=name)
        self._record(logical_id, name)
        LOG.info("SES configuration set %s created", logical_id)

    def _email_identity(self, logical_id: str, properties: dict[str, Any]) -> None:
        identity = str(self._resolve(properties["EmailIdentity"]))
        self.clients("sesv2").create_email_identity(EmailIdentity=identity)
        self._record(logical_id, identity)
        LOG.info("SES identity %s created", logical_id)

    def _verify_sender_identity(self) -> None:
        """The sender address (and its domain) must be a verified SES identity."""
        if "SenderAddress" not in self.template.parameters:
            return
        _, address = parseaddr(str(self.resolver.parameter("SenderAddress")))
        if not address:
            return
        sesv2 = self.clients("sesv2")
        for identity in {address, address.rpartition("@")[2]} - {""}:
            sesv2.create_email_identity(EmailIdentity=identity)
        LOG.info("SES sender identity and its domain verified")

    # --------------------------------------------------------------- compute

    def _role(self, service: str) -> str:
        """One role per service principal, so that moto accepts the ARNs."""
        if service not in self._roles:
            name = f"{self.stack_name}-{service.split('.', maxsplit=1)[0]}-role"
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"},
                ],
            }
            iam = self.clients("iam")
            try:
                role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))
                arn = role["Role"]["Arn"]
            except iam.exceptions.EntityAlreadyExistsException:
                arn = iam.get_role(RoleName=name)["Role"]["Arn"]
            self._roles[service] = arn
        return self._roles[service]

    def _function(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties.get("FunctionName"), 64)
        code_uri = self._resolve(properties.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: only a local CodeUri folder is supported")
        handler = str(self._resolve(properties.get("Handler", "app.handler")))
        variables = self._resolve((properties.get("Environment") or {}).get("Variables") or {})
        environment = {key: env_string(value) for key, value in variables.items()}
        memory = int(self._resolve(properties.get("MemorySize", 128)))
        timeout = int(self._resolve(properties.get("Timeout", 3)))
        response = self.clients("lambda").create_function(
            FunctionName=name,
            Runtime=str(self._resolve(properties.get("Runtime", "python3.13"))),
            Role=self._role("lambda.amazonaws.com"),
            Handler=handler,
            Code={"ZipFile": _dummy_zip()},
            Description=str(self._resolve(properties.get("Description", ""))),
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": environment},
        )
        spec = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=response["FunctionArn"],
            code_dir=(self.template.root / code_uri).resolve(),
            handler=handler,
            environment=self._local_environment(environment),
            memory_mb=memory,
            timeout_s=timeout,
        )
        self._async_failure_settings(spec, properties)
        self._record(logical_id, name, Arn=spec.arn)
        self.resources.functions[logical_id] = spec
        LOG.info("function %s created (handler %s)", logical_id, handler)
        for event_name, event in (properties.get("Events") or {}).items():
            self._function_event(spec, str(event_name), event)

    def _async_failure_settings(self, spec: FunctionSpec, properties: dict[str, Any]) -> None:
        dead_letter = self._resolve(properties.get("DeadLetterQueue") or {})
        if dead_letter.get("Type", "SQS") == "SQS" and dead_letter.get("TargetArn"):
            spec.dead_letter_arn = str(dead_letter["TargetArn"])
        invoke_config = self._resolve(properties.get("EventInvokeConfig") or {})
        on_failure = (invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}
        if on_failure.get("Type") == "SQS" and on_failure.get("Destination"):
            spec.dead_letter_arn = str(on_failure["Destination"])
        if "MaximumRetryAttempts" in invoke_config:
            spec.max_async_retries = int(invoke_config["MaximumRetryAttempts"])

    def _local_environment(self, environment: Mapping[str, str]) -> dict[str, str]:
        """The template's values with the local overrides applied (``None`` unsets)."""
        local = dict(environment)
        for key, value in self.env_overrides.items():
            if value is None:
                local.pop(key, None)
            else:
                local[key] = value
        return local

    def _common_environment(self) -> dict[str, str]:
        variables = self._resolve(
            ((self.template.globals.get("Function") or {}).get("Environment") or {}).get("Variables") or {}
        )
        return self._local_environment({key: env_string(value) for key, value in variables.items()})

    def _function_event(self, spec: FunctionSpec, event_name: str, event: dict[str, Any]) -> None:
        event_type = str(event.get("Type"))
        props = event.get("Properties") or {}
        if event_type == "HttpApi":
            self._http_route(spec, event_name, props)
        elif event_type in RULE_EVENT_TYPES or event_type in SCHEDULE_EVENT_TYPES:
            self._sam_rule_event(
                spec.logical_id,
                target_arn=spec.arn,
                event_name=event_name,
                event_type=event_type,
                properties=props,
                target_suffix="LambdaTarget",
            )
        else:
            LOG.warning("%s event %s (%s): not emulated locally", spec.logical_id, event_name, event_type)

    def _http_route(self, spec: FunctionSpec, event_name: str, props: dict[str, Any]) -> None:
        path = props.get("Path")
        method = str(props.get("Method") or "ANY").upper()
        if not path:
            path, method = "$default", "ANY"
        authorizer = (props.get("Auth") or {}).get("Authorizer")
        if authorizer is None:
            authorizer = self._default_authorizer(props.get("ApiId"))
        route = HttpRoute(
            function=spec.logical_id,
            method="ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
            path=str(path),
            iam_auth=authorizer == "AWS_IAM",
        )
        spec.http_routes.append(route)
        LOG.info("route %s -> %s (%s)", route.route_key, spec.logical_id, event_name)

    def _default_authorizer(self, api_id: Any) -> str | None:
        if isinstance(api_id, dict) and isinstance(api_id.get("Ref"), str):
            api = self.template.resources.get(api_id["Ref"]) or {}
            auth = (api.get("Properties") or {}).get("Auth") or {}
            default = auth.get("DefaultAuthorizer")
            return str(default) if default else None
        return None

    # ---------------------------------------------------------- orchestration

    def _state_machine(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = self._name(logical_id, properties.get("Name"), 80)
        substitutions = {
            key: env_string(value)
            for key, value in self._resolve(properties.get("DefinitionSubstitutions") or {}).items()
        }
        definition, definition_file = self._definition(logical_id, properties, substitutions)
        response = self.clients("stepfunctions").create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=self._role("states.amazonaws.com"),
            type=str(self._resolve(properties.get("Type", "STANDARD"))),
        )
        arn = response["stateMachineArn"]
        self._record(logical_id, arn, Arn=arn, Name=name)
        self.resources.state_machines[logical_id] = StateMachineSpec(logical_id, name, arn, definition_file)
        LOG.info("state machine %s created", logical_id)
        for event_name, event in (properties.get("Events") or {}).items():
            event_type = str(event.get("Type"))
            if event_type in RULE_EVENT_TYPES or event_type in SCHEDULE_EVENT_TYPES:
                props = event.get("Properties") or {}
                self._sam_rule_event(
                    logical_id,
                    target_arn=arn,
                    event_name=str(event_name),
                    event_type=event_type,
                    properties=props,
                    target_suffix="StepFunctionsTarget",
                )
            else:
                LOG.warning("%s event %s (%s): not emulated locally", logical_id, event_name, event_type)

    def _definition(
        self, logical_id: str, properties: dict[str, Any], substitutions: Mapping[str, str]
    ) -> tuple[Any, Path | None]:
        uri = properties.get("DefinitionUri")
        if uri is not None:
            uri = self._resolve(uri)
            if not isinstance(uri, str):
                raise TemplateError(f"{logical_id}: only a local DefinitionUri file is supported")
            path = (self.template.root / uri).resolve()
            text, missing = substitute_definition(path.read_text(encoding="utf-8"), substitutions)
            definition = json.loads(text) if path.suffix == ".json" else load_yaml(text)
        elif properties.get("Definition") is not None:
            path = None
            raw = json.dumps(self._resolve(properties["Definition"]))
            text, missing = substitute_definition(raw, substitutions)
            definition = json.loads(text)
        else:
            raise TemplateError(f"{logical_id}: neither DefinitionUri nor Definition")
        if missing:
            LOG.warning("%s: no substitution for %s", logical_id, ", ".join(sorted(missing)))
        for change in adapt_definition_for_moto(definition):
            LOG.info("%s: %s (moto limit)", logical_id, change)
        return definition, path

    def _sam_rule_event(
        self,
        owner: str,
        *,
        target_arn: str,
        event_name: str,
        event_type: str,
        properties: dict[str, Any],
        target_suffix: str,
    ) -> None:
        """SAM ``EventBridgeRule``/``Schedule``/``ScheduleV2`` events of a function or state machine."""
        props = self._resolve(properties)
        logical_id = f"{owner}{event_name}"
        target: dict[str, Any] = {"Id": (props.get("Target") or {}).get("Id", f"{logical_id}{target_suffix}")}
        target["Arn"] = target_arn
        for key in ("Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"):
            if key in props:
                target[key] = props[key]
        state = props.get("State") or ("DISABLED" if props.get("Enabled") is False else "ENABLED")
        if event_type == "ScheduleV2":
            self._remember_schedule(
                ScheduleSpec(
                    logical_id=logical_id,
                    name=self._name(logical_id, props.get("Name"), 64),
                    expression=str(props.get("ScheduleExpression")),
                    target_arn=target_arn,
                    input=_input_text(props.get("Input"), "{}"),
                    kind="scheduler",
                )
            )
            return
        self._put_rule(
            logical_id,
            name=self._name(logical_id, props.get("RuleName") or props.get("Name"), 64),
            bus=props.get("EventBusName"),
            pattern=props.get("Pattern"),
            schedule=props.get("Schedule"),
            state=state,
            targets=[target],
        )

    def _events_rule(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self._resolve(properties)
        pattern = props.get("EventPattern")
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        self._put_rule(
            logical_id,
            name=self._name(logical_id, props.get("Name"), 64),
            bus=props.get("EventBusName"),
            pattern=pattern,
            schedule=props.get("ScheduleExpression"),
            state=props.get("State", "ENABLED"),
            targets=[dict(target) for target in props.get("Targets") or []],
        )

    def _put_rule(
        self,
        logical_id: str,
        *,
        name: str,
        bus: Any,
        pattern: dict[str, Any] | None,
        schedule: Any,
        state: str,
        targets: list[dict[str, Any]],
    ) -> None:
        bus_name = str(bus).rsplit("/", 1)[-1] if bus else "default"
        request: dict[str, Any] = {"Name": name, "State": state, "EventBusName": bus_name}
        if pattern:
            request["EventPattern"] = json.dumps(pattern)
        if schedule:
            request["ScheduleExpression"] = str(schedule)
        events = self.clients("events")
        arn = events.put_rule(**request)["RuleArn"]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus_name, Targets=targets)
        self._record(logical_id, name, Arn=arn)
        self.resources.rules[logical_id] = RuleSpec(logical_id, name, bus_name, pattern, targets)
        if schedule:
            for target in targets:
                self._remember_schedule(
                    ScheduleSpec(
                        logical_id=f"{logical_id}.{target['Id']}",
                        name=name,
                        expression=str(schedule),
                        target_arn=str(target["Arn"]),
                        input=_input_text(target.get("Input"), None),
                        kind="events-rule",
                    )
                )
        LOG.info("rule %s on bus %s created (%d targets)", logical_id, bus_name, len(targets))

    def _scheduler_schedule(self, logical_id: str, properties: dict[str, Any]) -> None:
        props = self._resolve(properties)
        name = self._name(logical_id, props.get("Name"), 64)
        target = props.get("Target") or {}
        self._remember_schedule(
            ScheduleSpec(
                logical_id=logical_id,
                name=name,
                expression=str(props.get("ScheduleExpression")),
                target_arn=str(target.get("Arn")),
                input=_input_text(target.get("Input"), "{}"),
                kind="scheduler",
            )
        )
        self._record(logical_id, name, Arn=self._arn("scheduler", f"schedule/default/{name}"))

    def _remember_schedule(self, schedule: ScheduleSpec) -> None:
        self.resources.schedules[schedule.logical_id] = schedule
        LOG.info(
            "schedule %s (%s) remembered: moto does not fire schedules",
            schedule.logical_id,
            schedule.expression,
        )


def _input_text(value: Any, default: str | None) -> str | None:
    """A target's constant Input as a JSON document string (templates may give a map)."""
    if value is None:
        return default
    return value if isinstance(value, str) else json.dumps(value)


def ensure_python_layers_importable(layer_dirs: list[Path]) -> None:
    """Emulate Lambda mounting Python layers: put their source folders on ``sys.path``.

    A no-op when the folders are already there (e.g. from the project's pythonpath).
    """
    present = {Path(entry or ".").resolve() for entry in sys.path}
    for folder in layer_dirs:
        if folder.is_dir() and folder not in present:
            sys.path.insert(0, str(folder))
            LOG.info("layer folder %s put on the import path", folder.name)
