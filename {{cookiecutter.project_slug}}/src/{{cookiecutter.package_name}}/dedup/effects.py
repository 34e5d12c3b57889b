"""Side effects that happen exactly once: DynamoDB writes that commit with the completion.

Dedup alone promises that ``process`` runs once per unit, except in one window: when the
invocation dies (or cannot record the completion) after the work was done, the retry does
it again. Writes that ``process`` enlists here close that window for DynamoDB: they are not
sent when they are enlisted, but kept, and committed in one ``TransactWriteItems`` together
with the unit's completion, on condition that this invocation still holds the unit. Either
the writes and "completed" are both recorded, or neither is: a crash anywhere leaves a retry
that finds nothing done, and a copy whose lease lapsed cannot commit at all. Call these only
from ``process`` (they raise RuntimeError elsewhere)::

    effects.put(ORDERS_TABLE, {"order_id": "ord-1", "status": "received"})
    effects.update(STOCK_TABLE, {"sku": "beans"}, "ADD #on_hand :minus_two",
                   names={"#on_hand": "on_hand"}, values={":minus_two": -2})

Once ``process`` has returned, dedup hands what it enlisted to :func:`commit`.

Values are plain Python (str, int, Decimal, bool, None, bytes, list, dict, set), converted as
boto3's resource API does. Limits, checked as each write is enlisted, so that nothing is
written when they are passed: 99 writes (DynamoDB allows 100 items per transaction; the
completion is one) and 4 MB in all. A transactional write costs twice the write units of a
plain one.

For other systems, pass the unit's :func:`idempotency_token` (or :func:`dedup_key`) as their
own idempotency key: they then drop a repeated request for as long as they remember the key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from . import store

Write = dict[str, Any]  # one item of TransactWriteItems: {"Put": {...}}, {"Update": {...}}, ...

MAX_WRITES = 99
MAX_TRANSACTION_BYTES = 4_000_000
# The namespace of idempotency tokens: the same dedup key always gives the same token.
TOKEN_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


class WriteRefused(Exception):
    """An enlisted write's own condition failed (or DynamoDB refused the write): nothing of
    the unit was committed, and the unit fails like work that raised."""

    def __init__(self, positions: list[int], reasons: list[dict[str, Any]]) -> None:
        described = "; ".join(
            f"write {position + 1}: {reason.get('Code')} {reason.get('Message', '')}".strip()
            for position, reason in zip(positions, reasons, strict=True)
        )
        super().__init__(described)
        self.positions = positions


class TooManyWrites(ValueError):
    """The enlisted writes would not fit in one transaction: enlist fewer, or smaller."""


class _Unit:
    """What one unit's work has enlisted so far."""

    __slots__ = ("key", "size", "writes")

    def __init__(self, key: str) -> None:
        self.key = key
        self.writes: list[Write] = []
        self.size = 0  # bytes, as JSON: near enough DynamoDB's own count


_current: ContextVar[_Unit | None] = ContextVar("dedup_unit", default=None)


@contextmanager
def collecting(key: str) -> Iterator[list[Write]]:
    """Collect what the work of the unit under ``key`` enlists (once.attempt uses this)."""
    unit = _Unit(key)
    token = _current.set(unit)
    try:
        yield unit.writes
    finally:
        _current.reset(token)


def dedup_key() -> str:
    """The dedup key of the unit being processed: ``<operation>#<unit id>``."""
    return _unit().key


def idempotency_token() -> str:
    """A stable 36-character token for the unit being processed (a UUID derived from its
    dedup key): short enough for DynamoDB's ClientRequestToken (36 at most), SQS FIFO's
    MessageDeduplicationId and payment APIs' Idempotency-Key headers."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, _unit().key))


def put(
    table: str,
    item: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Enlist a PutItem of ``item`` into ``table``."""
    _enlist("Put", table, {"Item": _typed(item)}, condition, names, values)


def update(
    table: str,
    key: Mapping[str, Any],
    expression: str,
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Enlist an UpdateItem of the item under ``key`` with the update ``expression``."""
    request = {"Key": _typed(key), "UpdateExpression": expression}
    _enlist("Update", table, request, condition, names, values)


def delete(
    table: str,
    key: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Enlist a DeleteItem of the item under ``key``."""
    _enlist("Delete", table, {"Key": _typed(key)}, condition, names, values)


def condition_check(
    table: str,
    key: Mapping[str, Any],
    condition: str,
    *,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Enlist a check that commits the unit only if ``condition`` holds for the item."""
    _enlist("ConditionCheck", table, {"Key": _typed(key)}, condition, names, values)


def commit(writes: Sequence[Write], completion: dict[str, Any], token: str) -> None:
    """Commit ``writes`` and ``completion`` (an update of the dedup record) together, or none.

    ``token``, the claim's, makes DynamoDB answer a retry of a transaction that committed with
    success (for 10 minutes) instead of running it again. When nothing was committed, raises
    store.ConditionFailed (the completion's condition failed; ``item`` is the record that
    refused it), WriteRefused (a write's own condition failed, or DynamoDB refused the write)
    or store.StoreUnavailable (anything else: throttled, a conflicting transaction, ...).
    """
    items = [*writes, {"Update": {"TableName": store.table_name(), **completion}}]
    try:
        store.call("transact_write_items", TransactItems=items, ClientRequestToken=token)
    except store.TransactionCanceled as canceled:
        *for_writes, for_completion = canceled.reasons or [{}]
        if for_completion.get("Code") == "ConditionalCheckFailed":
            raise store.ConditionFailed(for_completion.get("Item", {})) from None
        refused = [
            index
            for index, reason in enumerate(for_writes)
            if reason.get("Code") in ("ConditionalCheckFailed", "ValidationError")
        ]
        if refused:
            raise WriteRefused(refused, [for_writes[i] for i in refused]) from None
        raise store.StoreUnavailable(f"transaction canceled: {canceled}") from None


def _enlist(
    kind: str,
    table: str,
    request: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> None:
    unit = _unit()
    request = {"TableName": table, **request}
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    if values:
        request["ExpressionAttributeValues"] = _typed(values)
    write = {kind: request}
    size = len(json.dumps(write, default=str))
    if len(unit.writes) >= MAX_WRITES or unit.size + size > MAX_TRANSACTION_BYTES:
        raise TooManyWrites(
            f"a unit's writes commit in one transaction: at most {MAX_WRITES} writes and"
            f" {MAX_TRANSACTION_BYTES:,} bytes; this {kind} would make"
            f" {len(unit.writes) + 1} writes, {unit.size + size:,} bytes"
        )
    unit.writes.append(write)
    unit.size += size


def _unit() -> _Unit:
    unit = _current.get()
    if unit is None:
        raise RuntimeError("effects are enlisted from service.process, while a unit is processed")
    return unit


def _typed(values: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer  # imported when first needed: cold start

    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in values.items()}
