"""Preparing the state machine definitions of ``statemachines/`` for moto.

Definitions get their ``DefinitionSubstitutions`` as on AWS, then are adapted where moto
5.2's ASL grammar rejects valid Amazon States Language, so that the files themselves stay
written for AWS:

- ``"ExecutionType": "EXPRESS"`` in a Distributed Map's ``ProcessorConfig`` -> STANDARD
  (the child executions only change their billing model on AWS, not their behaviour);
- an integer ``ToleratedFailurePercentage`` -> the same number as a float;
- ``ItemBatcher`` (unknown to moto) -> a Pass state before the Map that partitions the items
  with ``States.ArrayPartition`` and an ``ItemSelector`` that hands each child
  ``{"Items": [...], "BatchInput": {...}}``, the shape a batched child receives on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")
BATCH_STASH = "devstackItemBatches"
"""Key under which the emulated batches are kept in the Map's input (visible to later states)."""


def substitute_definition(text: str, substitutions: Mapping[str, str]) -> tuple[str, set[str]]:
    """Replace ``${Name}`` placeholders like Step Functions' DefinitionSubstitutions.

    Returns the text and the placeholders that had no value (left as they were).
    """
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in substitutions:
            return substitutions[name]
        missing.add(name)
        return match.group(0)

    return _PLACEHOLDER.sub(replace, text), missing


def adapt_definition_for_moto(definition: Any) -> list[str]:
    """Rewrite, in place, what moto's grammar rejects; returns what was changed."""
    changes: list[str] = []
    if isinstance(definition, dict) and isinstance(definition.get("States"), dict):
        _adapt_machine(definition, changes)
    return changes


def _adapt_machine(machine: dict[str, Any], changes: list[str]) -> None:
    """One ``{"StartAt", "States"}`` scope (the machine, a branch, an item processor)."""
    states: dict[str, Any] = machine["States"]
    for name, state in list(states.items()):
        if not isinstance(state, dict):
            continue
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict) and isinstance(state[key].get("States"), dict):
                _adapt_machine(state[key], changes)
        for branch in state.get("Branches") or []:
            if isinstance(branch, dict) and isinstance(branch.get("States"), dict):
                _adapt_machine(branch, changes)
        if state.get("Type") != "Map":
            continue
        config = (state.get("ItemProcessor") or {}).get("ProcessorConfig")
        if isinstance(config, dict) and config.get("ExecutionType") == "EXPRESS":
            config["ExecutionType"] = "STANDARD"
            changes.append(f"{name}: Distributed Map ExecutionType EXPRESS -> STANDARD")
        percentage = state.get("ToleratedFailurePercentage")
        if isinstance(percentage, int) and not isinstance(percentage, bool):
            state["ToleratedFailurePercentage"] = float(percentage)
            changes.append(f"{name}: ToleratedFailurePercentage as a float")
        if "ItemBatcher" in state:
            changes.append(_emulate_item_batcher(machine, name, state))


def _emulate_item_batcher(machine: dict[str, Any], name: str, state: dict[str, Any]) -> str:
    batcher = state["ItemBatcher"]
    size = batcher.get("MaxItemsPerBatch")
    unsupported = [
        reason
        for reason, present in (
            ("MaxItemsPerBatch is missing", not isinstance(size, int)),
            ("InputPath is set", state.get("InputPath") not in (None, "$")),
            ("ItemSelector is set", "ItemSelector" in state or "Parameters" in state),
            ("ItemReader is set", "ItemReader" in state),
            ("JSONata", state.get("QueryLanguage") == "JSONata" or machine.get("QueryLanguage") == "JSONata"),
        )
        if present
    ]
    if unsupported:
        return f"{name}: ItemBatcher kept ({', '.join(unsupported)}); moto will reject it"
    states: dict[str, Any] = machine["States"]
    pass_name = f"{name}Batches"
    while pass_name in states:
        pass_name += "_"
    items_path = str(state.get("ItemsPath", "$"))
    _redirect(machine, name, pass_name)
    states[pass_name] = {
        "Type": "Pass",
        "Parameters": {"batches.$": f"States.ArrayPartition({items_path}, {size})"},
        "ResultPath": f"$.{BATCH_STASH}",
        "Next": name,
    }
    selector: dict[str, Any] = {"Items.$": "$$.Map.Item.Value"}
    if "BatchInput" in batcher:
        selector["BatchInput"] = batcher["BatchInput"]
    state["ItemsPath"] = f"$.{BATCH_STASH}.batches"
    state["ItemSelector"] = selector
    del state["ItemBatcher"]
    return f"{name}: ItemBatcher of {size} emulated with States.ArrayPartition (state {pass_name})"


def _redirect(machine: dict[str, Any], old: str, new: str) -> None:
    """Every transition to ``old`` in this scope now goes to ``new``."""
    if machine.get("StartAt") == old:
        machine["StartAt"] = new
    for state in machine["States"].values():
        if not isinstance(state, dict):
            continue
        if state.get("Next") == old:
            state["Next"] = new
        if state.get("Default") == old:
            state["Default"] = new
        for rule in [*(state.get("Choices") or []), *(state.get("Catch") or [])]:
            if isinstance(rule, dict) and rule.get("Next") == old:
                rule["Next"] = new
