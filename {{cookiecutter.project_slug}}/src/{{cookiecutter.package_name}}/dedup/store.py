"""The dedup table: where it is, how long its records count, and what a request to it can get.

Every request dedup makes goes through :func:`send`, which turns each way a request can end
into one of three: a reply, :class:`ConditionFailed` (the table refused the write and said
which record refused it), or :class:`StoreUnavailable` (no answer to act on: throttled past
the retries, timed out, the table missing or not configured). An outage is never mistaken for
a refusal, and a refusal is never mistaken for an outage.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TABLE_NAME_ENV = "DEDUP_TABLE_NAME"
TTL_SECONDS_ENV = "DEDUP_TTL_SECONDS"
# Requests in flight at once for one invocation (a batch's claims and completions). The
# client's connection pool is as large, so none of them waits for a connection.
MAX_CONCURRENT_REQUESTS = 16

# Fail fast: a unit that waits out long retries here is better retried by the event source.
CLIENT_SETTINGS = {
    "retries": {"mode": "standard", "total_max_attempts": 3},  # the first try and two retries
    "connect_timeout": 2,
    "read_timeout": 2,
    "max_pool_connections": MAX_CONCURRENT_REQUESTS,
    # The requests are built by this code, always in the same shapes: checking each against
    # the API model on every call costs CPU on the hot path and can find nothing.
    "parameter_validation": False,
}

_client: BaseClient | None = None
_client_lock = threading.Lock()

AttributeValue = dict[str, Any]  # DynamoDB's typed value: {"S": "..."}, {"N": "1"}, ...
Item = dict[str, AttributeValue]


class StoreUnavailable(Exception):
    """The dedup table could not be used (or is not configured): run nothing, ack nothing."""


class NotConfigured(StoreUnavailable):
    """A setting the function needs from template.yaml is missing or invalid."""


class ConditionFailed(Exception):
    """The table refused a conditional write; ``item`` is the record that refused it, if any."""

    def __init__(self, item: Item) -> None:
        super().__init__("condition failed")
        self.item = item


class TransactionCanceled(Exception):
    """A transaction was refused as a whole; ``reasons`` has one entry per item, in order."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__(", ".join(reason.get("Code") or "None" for reason in reasons))
        self.reasons = reasons


def client() -> BaseClient:
    """The DynamoDB client: one per container, created on first use (not at import)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = boto3.client("dynamodb", config=Config(**CLIENT_SETTINGS))
        return _client


def use_client(replacement: BaseClient | None) -> None:
    """Replace the client (tests pass one bound to moto); ``None`` goes back to the default."""
    global _client
    with _client_lock:
        _client = replacement


def table_name() -> str:
    name = os.environ.get(TABLE_NAME_ENV)
    if not name:
        raise NotConfigured(f"{TABLE_NAME_ENV} is not set (template.yaml sets it)")
    return name


def ttl_seconds() -> int:
    """How long a record counts: DedupTtlSeconds in template.yaml, passed in the environment."""
    value = os.environ.get(TTL_SECONDS_ENV, "")
    if not value.isdigit() or int(value) == 0:
        raise NotConfigured(
            f"{TTL_SECONDS_ENV} is {value!r}: it must be a whole number of seconds"
            " (template.yaml sets it from the DedupTtlSeconds parameter)"
        )
    return int(value)


def expiry(now: float) -> AttributeValue:
    """When a record written at ``now`` stops counting: the TTL later, in whole epoch seconds
    (the form DynamoDB's TTL reads)."""
    return {"N": str(int(now) + ttl_seconds())}


def send(operation: str, **request: Any) -> dict[str, Any]:
    """Send one request on the dedup table; every failure becomes one of this module's errors."""
    return call(operation, TableName=table_name(), **request)


def call(operation: str, **request: Any) -> dict[str, Any]:
    """Send one request as given (a transaction names its tables in its items)."""
    try:
        return getattr(client(), operation)(**request)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(error.response.get("Item", {})) from None
        if code == "TransactionCanceledException":
            raise TransactionCanceled(error.response.get("CancellationReasons", [])) from None
        raise StoreUnavailable(str(error)) from error
    except BotoCoreError as error:
        raise StoreUnavailable(str(error)) from error
