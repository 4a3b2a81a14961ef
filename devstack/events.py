"""EventBridge delivery to Step Functions and Lambda targets.

moto's ``Rule.send_to_targets`` matches the pattern and then raises NotImplementedError for
``states`` and ``lambda`` target ARNs. It is wrapped here: moto still matches (its
``EventPattern``) and delivers to the targets it supports (SQS, logs, buses ...), while
state machine targets get ``StartExecution`` and Lambda targets an asynchronous in-process
invocation, each with the EventBridge envelope (or the target's Input/InputPath/
InputTransformer), as EventBridge would.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devstack.lambdas import LambdaRuntime
from devstack.patching import MotoPatch

LOG = logging.getLogger(__name__)

ENVELOPE_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The event as targets receive it (moto keeps ``time`` as epoch seconds internally)."""
    result = {key: copy.deepcopy(event[key]) for key in ENVELOPE_FIELDS if key in event}
    timestamp = result.get("time")
    if isinstance(timestamp, (int, float)) or (isinstance(timestamp, str) and _is_number(timestamp)):
        result["time"] = datetime.fromtimestamp(float(timestamp), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(timestamp, datetime):
        result["time"] = timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif not timestamp:
        result["time"] = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return result


def scheduled_event(rule_arn: str, account: str, region: str) -> dict[str, Any]:
    """The envelope EventBridge sends for a scheduled rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json_path(document: Any, path: str) -> Any:
    """Simple JSONPath (``$``, ``$.a.b``, ``$.a[0]``) as EventBridge's InputPath uses."""
    from jsonpath_ng.ext import parse

    matches = parse(path).find(document)
    return matches[0].value if matches else None


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def transform_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The payload a target receives, as a JSON document string."""
    if target.get("Input") is not None:
        value = target["Input"]
        return value if isinstance(value, str) else json.dumps(value)
    if target.get("InputPath"):
        return json.dumps(_json_path(event, str(target["InputPath"])))
    transformer = target.get("InputTransformer")
    if transformer:
        return _apply_transformer(transformer, event)
    return json.dumps(event)


def _apply_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """InputTransformer: quoted placeholders get the raw text, bare ones the JSON value."""
    paths = transformer.get("InputPathsMap") or {}
    values = {name: _json_path(event, str(path)) for name, path in paths.items()}
    values["aws.events.event"] = event
    values["aws.events.event.json"] = event
    values["aws.events.rule-arn"] = event.get("resources", [None])[0] if event.get("resources") else None
    template = str(transformer.get("InputTemplate", ""))
    out: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value))
            position = match.end()
            continue
        if char == '"' and (position == 0 or template[position - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        position += 1
    rendered = "".join(out)
    try:
        json.loads(rendered)
    except ValueError:
        return json.dumps(rendered)  # a plain-text template: the target receives a string
    return rendered


class EventDelivery:
    """Delivers matched events to state machine and Lambda targets."""

    def __init__(self, runtime: LambdaRuntime, sqs_sender: Callable[[str, str], None] | None = None):
        self.runtime = runtime
        self.sqs_sender = sqs_sender

    def deliver(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
        """Deliver one event to one ``states`` or ``lambda`` target; failures go to its DLQ."""
        arn = str(target["Arn"])
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        payload = transform_input(target, event)
        try:
            if service == "states":
                self.start_execution(arn, payload)
                LOG.info("rule %s started state machine %s", rule.name, arn.rsplit(":", 1)[-1])
            elif service == "lambda":
                spec = self.runtime.resources.function_by_name(arn)
                if spec is None:
                    raise LookupError(f"function {arn.rsplit(':', 1)[-1]} is not part of the template")
                self.runtime.invoke_async(spec, payload)
                LOG.info("rule %s invoked function %s", rule.name, spec.logical_id)
        except Exception as error:
            LOG.warning("rule %s: delivery to %s failed: %s", rule.name, arn.rsplit(":", 1)[-1], error)
            dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dead_letter and self.sqs_sender is not None:
                self.sqs_sender(str(dead_letter), payload)

    @staticmethod
    def start_execution(state_machine_arn: str, payload: str, name: str | None = None) -> str:
        """``StartExecution`` directly on moto's backend (works in server and in-process mode)."""
        from moto.stepfunctions.responses import get_backend

        parts = state_machine_arn.split(":")
        backend = get_backend(parts[4], parts[3])
        execution = backend.start_execution(
            state_machine_arn,
            name=name or str(uuid.uuid4()),
            execution_input=payload,
        )
        return str(execution.execution_arn)


_active_delivery: EventDelivery | None = None
HANDLED_SERVICES = ("states", "lambda")


def _target_service(target: dict[str, Any]) -> str:
    parts = str(target.get("Arn", "")).split(":")
    return parts[2] if len(parts) > 2 else ""


def _patched_send_to_targets(rule: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    delivery = _active_delivery
    if delivery is None:
        _SEND.original(rule, original_event, transform_input)
        return
    if rule.state == "DISABLED" or (rule.scheduled_expression and not rule.event_pattern.get_pattern()):
        return  # disabled rules and schedules never match events
    if not rule.event_pattern.matches_event(original_event):
        return
    ours = [t for t in rule.targets if _target_service(t) in HANDLED_SERVICES]
    others = [t for t in rule.targets if _target_service(t) not in HANDLED_SERVICES]
    if others:
        clone = copy.copy(rule)
        clone.targets = others
        _SEND.original(clone, original_event, transform_input)
    if ours:
        event = envelope(dict(original_event))
        for target in ours:
            delivery.deliver(rule, target, event)


_SEND = MotoPatch(
    "moto.events.models.Rule",
    "send_to_targets",
    lambda _original: _patched_send_to_targets,
    works_around="moto's EventBridge raises NotImplementedError for Step Functions and Lambda targets",
)


def install_events_patch(delivery: EventDelivery) -> None:
    """Wrap moto's ``Rule.send_to_targets`` (idempotent)."""
    global _active_delivery  # noqa: PLW0603 - a process-wide patch
    _SEND.install()
    _active_delivery = delivery


def uninstall_events_patch() -> None:
    """Give moto its own ``send_to_targets`` back."""
    global _active_delivery  # noqa: PLW0603
    _SEND.uninstall()
    _active_delivery = None
