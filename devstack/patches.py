"""Every fix the local stack makes to moto 5.2 (README lists them): a patch sets one attribute of a moto
module or class to what its factory builds from moto's own, names the limitation it works around, and
puts the original back on uninstall. State machines get their DefinitionSubstitutions, and what moto's
ASL grammar rejects is rewritten (:func:`adapt_definition_for_moto`), so the files stay written for AWS."""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.runtime import LambdaRuntime

LOG = logging.getLogger(__name__)
_MISSING = object()


@dataclass
class MotoPatch:
    owner: str  # a module, or a module and a class: "moto.ses.models:SESBackend"
    attribute: str
    factory: Callable[[Any], Any]  # moto's own attribute (None if it has none) -> the replacement
    works_around: str
    original: Any = _MISSING
    installed: bool = False

    def _owner(self) -> Any:
        module, _, name = self.owner.partition(":")
        return getattr(importlib.import_module(module), name) if name else importlib.import_module(module)

    def install(self) -> None:
        if not self.installed:
            owner = self._owner()
            self.original = owner.__dict__.get(self.attribute, _MISSING)
            setattr(owner, self.attribute, self.factory(getattr(owner, self.attribute, None)))
            self.installed = True

    def uninstall(self) -> None:
        if self.installed:
            owner, name, self.installed = self._owner(), self.attribute, False
            setattr(owner, name, self.original) if self.original is not _MISSING else delattr(owner, name)


PATCHES: list[MotoPatch] = []
CLOUDFORMATION_PATCHES: list[MotoPatch] = []  # what provisioning needs (it installs them while it runs)
_runtime: LambdaRuntime | None = None


def patch(owner: str, attribute: str, *, works_around: str, provisioning: bool = False) -> Callable[[Any], Any]:
    """Register the decorated factory as a patch; say which moto limitation it works around."""
    if not works_around.strip():
        raise ValueError(f"{owner}.{attribute}: say which moto limitation the patch works around")

    def register(factory: Callable[[Any], Any]) -> Callable[[Any], Any]:
        PATCHES.append(MotoPatch(owner, attribute, factory, works_around))
        if provisioning:
            CLOUDFORMATION_PATCHES.append(PATCHES[-1])
        return factory

    return register


def install(runtime: LambdaRuntime | None = None, only: set[str] | None = None) -> None:
    """Install every patch, or ``only`` those of these attributes (idempotent): Lambda invocations, and
    EventBridge deliveries to state machines and functions, go to ``runtime`` (without one, to moto's own)."""
    global _runtime  # noqa: PLW0603 - the patches are process-wide
    _runtime = runtime
    install_all(p for p in PATCHES if only is None or p.attribute in only)


def uninstall() -> None:
    global _runtime  # noqa: PLW0603
    uninstall_all(PATCHES)
    _runtime = None


def install_all(patches: Iterable[MotoPatch]) -> None:
    for moto_patch in patches:
        moto_patch.install()


def uninstall_all(patches: Iterable[MotoPatch]) -> None:
    for moto_patch in reversed(list(patches)):
        moto_patch.uninstall()


@patch("moto.awslambda_simple.models:LambdaSimpleBackend", "invoke",
       works_around="without Docker, moto's Lambda invoke (LambdaSimpleBackend) returns a canned reply")  # fmt: skip
def _invoking_the_handler(original: Any) -> Any:
    def invoke(backend: Any, name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> Any:
        function = backend.get_function(name, qualifier).function_name
        if _runtime is None or (spec := _runtime.resources.function_by_name(function)) is None:
            return original(backend, name, qualifier, body, headers, response_headers)
        payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
        kind = next((str(v) for k, v in (headers or {}).items() if str(k).lower() == "x-amz-invocation-type"), "")
        if kind in ("Event", "DryRun"):
            if kind == "Event":
                _runtime.invoke_async(spec, payload)
            return b""
        result = _runtime.invoke(spec, payload)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["Content-Length"] = str(len(result.payload))
        return result.payload

    return invoke


@patch("moto.events.models:Rule", "send_to_targets",
       works_around="moto's EventBridge raises NotImplementedError for Step Functions and Lambda targets, "
                    "and calls an API destination without the event or the connection's credentials")  # fmt: skip
def _delivering_to_states_and_lambda(original: Any) -> Any:
    def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if _runtime is None:
            return original(rule, event, transform_input)
        if rule.state == "DISABLED" or (rule.scheduled_expression and not rule.event_pattern.get_pattern()):
            return None  # disabled rules and schedules match no event
        if not rule.event_pattern.matches_event(event):
            return None
        ours = [
            target
            for target in rule.targets  # (not moto's: Step Functions, Lambda, API destinations)
            if target["Arn"].split(":")[2] in ("states", "lambda") or ":api-destination/" in target["Arn"]
        ]
        if others := [target for target in rule.targets if target not in ours]:
            clone = copy.copy(rule)
            clone.targets = others
            original(clone, event, transform_input)  # moto's own: SQS, logs, buses ...
        for target in ours:
            _runtime.deliver(rule.name, target, event)
        return None

    return send_to_targets


_in_transaction = threading.local()
_dynamodb_requests = threading.RLock()


def _deepcopy(value: Any, memo: Any = None) -> Any:  # (no table inside a transaction)
    from moto.dynamodb.models.table import Table

    inside = getattr(_in_transaction, "active", False)
    return value if inside and isinstance(value, Table) else copy.deepcopy(value, memo)


patch("moto.dynamodb.models", "copy",
      works_around="moto deep-copies every table a TransactWriteItems touches (seconds per transaction)",
      )(lambda _original: SimpleNamespace(**vars(copy) | {"deepcopy": _deepcopy}))  # fmt: skip


@patch("moto.dynamodb.models:DynamoDBBackend", "transact_write_items",
       works_around="moto rolls a cancelled transaction back from copies of whole tables, made first")  # fmt: skip
def _copying_only_named_items(original: Any) -> Any:
    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        saved, shards = [], {}  # (the items of the table or partition, the key, a copy of the item or None)
        for operation in (next(iter(entry.values())) for entry in transact_items):
            table, values = backend.tables.get(operation.get("TableName")), operation.get("Key") or operation["Item"]
            if table is None or not {table.hash_key_attr, table.range_key_attr or table.hash_key_attr} <= set(values):
                continue  # moto rejects the request itself
            if table.stream_shard is not None:  # (its stream records go too)
                shards[id(table)] = (table.stream_shard.items, len(table.stream_shard.items))
            hash_key = DynamoType(values[table.hash_key_attr])
            range_key = DynamoType(values[table.range_key_attr]) if table.range_key_attr else None
            items = table.items if range_key is None else table.items.setdefault(hash_key, {})
            saved.append((items, range_key or hash_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        _in_transaction.active = True
        try:
            original(backend, transact_items)
        except Exception:
            for items, key, item in reversed(saved):
                if item is None:
                    items.pop(key, None)
                else:
                    items[key] = item
            for records, length in shards.values():
                del records[length:]
            raise
        finally:
            _in_transaction.active = False

    return transact_write_items


@patch("moto.dynamodb.responses:DynamoHandler", "call_action",
       works_around="moto checks a write's condition, then writes: another thread can write in between")  # fmt: skip
def _one_at_a_time(original: Any) -> Any:
    def call_action(handler: Any) -> Any:
        with _dynamodb_requests:
            return original(handler)

    return call_action


SENT_AT: dict[str, dt.datetime] = {}
"""SES message id -> when moto accepted it (the outbox shows it)."""


@patch("moto.ses.models", "get_random_message_id", works_around="moto's SES keeps no send time for a message")
def _recording_the_time(original: Any) -> Any:
    def get_random_message_id() -> str:  # (every send makes one as it sends)
        SENT_AT[message_id := str(original())] = dt.datetime.now(tz=dt.UTC)
        return message_id

    return get_random_message_id


SMS_SENT_AT: dict[str, dt.datetime] = {}
"""SNS SMS message id -> when moto accepted it (the SMS outbox shows it)."""


@patch("moto.sns.models:SMS", "__init__", works_around="moto's SNS keeps no send time for an SMS")
def _recording_the_sms_time(original: Any) -> Any:
    def __init__(sms: Any, message_id: str, *args: Any, **kwargs: Any) -> None:  # (every SMS sent makes one)
        original(sms, message_id, *args, **kwargs)
        SMS_SENT_AT[message_id] = dt.datetime.now(tz=dt.UTC)

    return __init__


@patch("moto.stepfunctions.parser.models:StepFunctionsParserBackend", "start_execution",
       works_around='moto names every unnamed execution "None": the second is refused as a duplicate')  # fmt: skip
def _start_with_a_name(original: Any) -> Any:
    def start_execution(backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)  # as AWS names it

    return start_execution


@patch("moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp:Timestamp", "_get_wait_seconds",
       works_around="moto's Wait with Timestamp compares a UTC time with the machine's naive local time")  # fmt: skip
def _utc_wait(original: Any) -> Any:
    def get_wait_seconds(timestamp: Any, env: Any) -> int:
        offset = dt.datetime.now().astimezone().utcoffset() or dt.timedelta(0)
        return int(original(timestamp, env) + offset.total_seconds())

    return get_wait_seconds


patch("moto.events.models:EventBus", "physical_resource_id", provisioning=True,
      works_around="moto's CloudFormation resolves a Ref to an event bus to the bus object, not its name",
      )(lambda _original: property(lambda bus: bus.name))  # fmt: skip


@patch("moto.stepfunctions.models:StateMachine", "create_from_cloudformation_json", provisioning=True,
       works_around="moto's CloudFormation creates state machines where they cannot run, "
                    "ignoring their DefinitionSubstitutions")  # fmt: skip
def _executable_state_machine(_original: Any) -> Any:
    def create(cls: Any, name: str, json_: dict[str, Any], account: str, region: str, **kwargs: Any) -> Any:
        from moto.stepfunctions.responses import get_backend

        props, pattern = json_["Properties"], r"\$\{([A-Za-z0-9_.:-]+)\}"
        values = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in props.get("DefinitionSubstitutions", {}).items()
        }
        missing = set(re.findall(pattern, text := props.get("DefinitionString", ""))) - set(values)
        definition = json.loads(re.sub(pattern, lambda match: values.get(match[1], match[0]), text))
        for change in [*(f"no substitution for ${{{key}}}" for key in missing), *adapt_definition_for_moto(definition)]:
            LOG.info("%s: %s (moto limit)", kwargs.get("LogicalId"), change)
        name, role, kind = props.get("StateMachineName", name), props.get("RoleArn", ""), props.get("StateMachineType")
        return get_backend(account, region).create_state_machine(name, json.dumps(definition), role, sm_type=kind)

    return classmethod(create)


BATCH_STASH = "devstackItemBatches"  # where the emulated batches are kept in the Map's input


def adapt_definition_for_moto(scope: Any, changes: list[str] | None = None) -> list[str]:
    """Rewrite, in place, what moto's grammar rejects in one ``{"StartAt", "States"}`` scope (the machine,
    a branch, an item processor) and the scopes in it; returns what was changed: ``"ExecutionType":
    "EXPRESS"`` in a Distributed Map -> STANDARD (on AWS the children only change their billing model); an
    integer ``ToleratedFailurePercentage`` -> a float; ``ItemBatcher`` -> a Pass state partitioning the
    items with ``States.ArrayPartition`` and an ``ItemSelector`` handing each child ``{"Items", "BatchInput"}``."""
    changes = [] if changes is None else changes
    states = scope.get("States") if isinstance(scope, dict) else None
    for name, state in list(states.items()) if isinstance(states, dict) else []:
        for inner in [state.get("ItemProcessor"), state.get("Iterator"), *(state.get("Branches") or [])]:
            adapt_definition_for_moto(inner, changes)
        config = (state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}
        if state.get("Type") == "Map" and config.get("ExecutionType") == "EXPRESS":
            config["ExecutionType"] = "STANDARD"
            changes.append(f"{name}: Distributed Map ExecutionType EXPRESS -> STANDARD")
        if state.get("Type") == "Map" and type(state.get("ToleratedFailurePercentage")) is int:
            state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
            changes.append(f"{name}: ToleratedFailurePercentage as a float")
        if state.get("Type") == "Map" and "ItemBatcher" in state:
            changes.append(_emulate_item_batcher(scope, name, state))
    return changes


def _emulate_item_batcher(scope: dict[str, Any], name: str, state: dict[str, Any]) -> str:
    batcher, states = state["ItemBatcher"], scope["States"]
    size = batcher.get("MaxItemsPerBatch")
    if not isinstance(size, int) or {"ItemSelector", "Parameters", "ItemReader"} & set(state) or "InputPath" in state:
        return f"{name}: ItemBatcher kept (only MaxItemsPerBatch over ItemsPath is emulated); moto will reject it"
    pass_name = f"{name}Batches"
    while pass_name in states:
        pass_name += "_"
    rules = [rule for other in states.values() for rule in [*other.get("Choices", []), *other.get("Catch", [])]]
    for holder in [scope, *states.values(), *rules]:
        for key in ("StartAt", "Next", "Default"):  # every transition to the Map now goes to the Pass state
            if holder.get(key) == name:
                holder[key] = pass_name
    partition = f"States.ArrayPartition({state.get('ItemsPath', '$')}, {size})"
    states[pass_name] = {"Type": "Pass", "Parameters": {"batches.$": partition}, "ResultPath": f"$.{BATCH_STASH}",
                         "Next": name}  # fmt: skip
    state["ItemsPath"] = f"$.{BATCH_STASH}.batches"
    state["ItemSelector"] = {"Items.$": "$$.Map.Item.Value"} | {k: v for k, v in batcher.items() if k == "BatchInput"}
    del state["ItemBatcher"]
    return f"{name}: ItemBatcher of {size} emulated with States.ArrayPartition (state {pass_name})"
