"""State machine definitions for moto: DefinitionSubstitutions, and valid Amazon States Language
that moto 5.2's ASL grammar rejects, rewritten so that the files stay written for AWS:

- ``"ExecutionType": "EXPRESS"`` in a Distributed Map's ``ProcessorConfig`` -> STANDARD (on AWS the
  child executions only change their billing model, not their behaviour);
- an integer ``ToleratedFailurePercentage`` -> the same number as a float;
- ``ItemBatcher`` (unknown to moto) -> a Pass state before the Map that partitions the items with
  ``States.ArrayPartition``, and an ``ItemSelector`` that hands each child
  ``{"Items": [...], "BatchInput": {...}}``, the shape a batched child receives on AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")
BATCH_STASH = "devstackItemBatches"
"""Key under which the emulated batches are kept in the Map's input (visible to later states)."""


def substitute_definition(text: str, substitutions: Mapping[str, Any]) -> tuple[str, set[str]]:
    """``${Name}`` placeholders replaced as Step Functions does; also the names that had no value."""

    def value(match: re.Match[str]) -> str:
        found = substitutions.get(match.group(1), match.group(0))
        return found if isinstance(found, str) else json.dumps(found)

    return _PLACEHOLDER.sub(value, text), set(_PLACEHOLDER.findall(text)) - set(substitutions)


def adapt_definition_for_moto(definition: Any) -> list[str]:
    """Rewrite, in place, what moto's grammar rejects; returns what was changed."""
    changes: list[str] = []
    if isinstance(definition, dict) and isinstance(definition.get("States"), dict):
        _adapt_scope(definition, changes)
    return changes


def _adapt_scope(machine: dict[str, Any], changes: list[str]) -> None:
    """One ``{"StartAt", "States"}`` scope (the machine, a branch, an item processor)."""
    for name, state in list(machine["States"].items()):
        if not isinstance(state, dict):
            continue
        for scope in [state.get("ItemProcessor"), state.get("Iterator"), *(state.get("Branches") or [])]:
            if isinstance(scope, dict) and isinstance(scope.get("States"), dict):
                _adapt_scope(scope, changes)
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
    batcher, states = state["ItemBatcher"], machine["States"]
    size = batcher.get("MaxItemsPerBatch")
    unsupported = [
        reason
        for reason, present in (
            ("MaxItemsPerBatch is missing", not isinstance(size, int)),
            ("InputPath is set", state.get("InputPath") not in (None, "$")),
            ("ItemSelector is set", "ItemSelector" in state or "Parameters" in state),
            ("ItemReader is set", "ItemReader" in state),
            ("JSONata", "JSONata" in (state.get("QueryLanguage"), machine.get("QueryLanguage"))),
        )
        if present
    ]
    if unsupported:
        return f"{name}: ItemBatcher kept ({', '.join(unsupported)}); moto will reject it"
    pass_name = f"{name}Batches"
    while pass_name in states:
        pass_name += "_"
    # Every transition to the Map in this scope now goes to the Pass state before it.
    for holder in [machine, *states.values(), *(rule for s in states.values() for rule in _rules(s))]:
        for key in ("StartAt", "Next", "Default"):
            if isinstance(holder, dict) and holder.get(key) == name:
                holder[key] = pass_name
    states[pass_name] = {
        "Type": "Pass",
        "Parameters": {"batches.$": f"States.ArrayPartition({state.get('ItemsPath', '$')}, {size})"},
        "ResultPath": f"$.{BATCH_STASH}",
        "Next": name,
    }
    state["ItemsPath"] = f"$.{BATCH_STASH}.batches"
    state["ItemSelector"] = {"Items.$": "$$.Map.Item.Value"} | (
        {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
    )
    del state["ItemBatcher"]
    return f"{name}: ItemBatcher of {size} emulated with States.ArrayPartition (state {pass_name})"


def _rules(state: Any) -> list[Any]:
    return [*(state.get("Choices") or []), *(state.get("Catch") or [])] if isinstance(state, dict) else []
