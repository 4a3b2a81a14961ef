"""Two fixes to moto's DynamoDB: ``TransactWriteItems`` cost, and atomic conditional writes.

DynamoDB checks a write's condition and applies the write as one step; moto checks, then
writes, with nothing in between to stop another thread (the local stack's HTTP server, and Step
Functions executions, run on threads). Two executions claiming one profile could then both
win. Every write operation here runs under one lock, which is what DynamoDB guarantees per item.

moto 5.2 deep-copies every table a transaction touches, once per operation, so that it can
roll back a cancelled transaction. With thousands of items each transaction then takes
seconds, and a review campaign (one transaction per email) or a table of demo data becomes
unusable locally. This wrapper keeps a copy of only the items the transaction names and puts
them back on a rollback, which is what the table copies were for; moto's own ``deepcopy`` of
the tables is skipped while the wrapped call runs (on that thread only).
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

from devstack.patching import MotoPatch, install_all, uninstall_all

_inside = threading.local()
_writes = threading.RLock()


class _CopyModule:
    """Stands in for ``copy`` in moto's DynamoDB models: tables are not copied inside a transaction."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(_inside, "transaction", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table: Any, operation: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    values = operation.get("Key") or operation.get("Item") or {}
    hash_key = DynamoType(values[table.hash_key_attr])
    range_key = DynamoType(values[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash key, range key, copy of the item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items:
        _, operation = next(iter(entry.items()))
        table = backend.tables.get(operation.get("TableName"))
        if table is None:
            continue
        try:
            hash_key, range_key = _key_of(table, operation)
        except (KeyError, TypeError):
            continue  # moto rejects the request itself
        item = table.get_item(hash_key, range_key) if (range_key is not None or not table.range_key_attr) else None
        saved.append((table, hash_key, range_key, copy.deepcopy(item)))
    return saved


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_key, range_key, item in reversed(saved):
        if item is None:
            if range_key is not None:
                table.items.get(hash_key, {}).pop(range_key, None)
            else:
                table.items.pop(hash_key, None)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item


def _copying_only_named_items(original: Any) -> Any:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _writes:
            saved = _snapshot(self, transact_items)
            _inside.transaction = True
            try:
                original(self, transact_items)
            except Exception:
                _restore(saved)
                raise
            finally:
                _inside.transaction = False

    return transact_write_items


def _atomic(original: Any) -> Any:
    """The write checks its condition and applies itself while no other write runs."""

    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return original(self, *args, **kwargs)

    return write


_NOT_ATOMIC = "moto checks a write's condition and applies the write in two steps another thread can split"
_PATCHES = (
    MotoPatch(
        "moto.dynamodb.models",
        "copy",
        lambda _original: _CopyModule(),
        works_around="moto deep-copies every table a TransactWriteItems touches (seconds per transaction)",
    ),
    MotoPatch(
        "moto.dynamodb.models.DynamoDBBackend",
        "transact_write_items",
        _copying_only_named_items,
        works_around="moto rolls a cancelled transaction back from table copies (kept instead: the named items)",
    ),
    MotoPatch("moto.dynamodb.models.DynamoDBBackend", "put_item", _atomic, works_around=_NOT_ATOMIC),
    MotoPatch("moto.dynamodb.models.DynamoDBBackend", "update_item", _atomic, works_around=_NOT_ATOMIC),
    MotoPatch("moto.dynamodb.models.DynamoDBBackend", "delete_item", _atomic, works_around=_NOT_ATOMIC),
)


def install_transactions_patch() -> None:
    """Make ``TransactWriteItems`` copy only the items it names, and every write atomic (idempotent)."""
    install_all(_PATCHES)


def uninstall_transactions_patch() -> None:
    """Give moto its own ``transact_write_items`` back."""
    uninstall_all(_PATCHES)
