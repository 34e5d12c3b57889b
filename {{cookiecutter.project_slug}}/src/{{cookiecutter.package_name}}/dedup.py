{%- import "sources.j2" as source with context -%}
{%- import "sam/" ~ cookiecutter.event_source ~ ".yaml.j2" as sam with context -%}
"""Do each unit of work once, although the event source delivers it at least once.

{{ source.name }} may deliver the same {{ source.unit }} to this function more than once:
minutes or days apart, or at the same moment to two concurrent invocations. This module
records every unit in a DynamoDB table under the key ``<operation>#<unit id>`` and keeps
three promises:

* a unit whose work completed is skipped when it comes again, until its record expires;
* a unit that another invocation is still working on is never acknowledged: the caller
  reports it failed, so that it is delivered again once the first copy has finished;
* a unit whose work failed, or whose invocation died, runs again: a failure deletes the
  record at once, a crash leaves a lease that ends when that invocation's time is up.

A unit's record moves like this::

    (none) --claim--> IN_PROGRESS --complete--> COMPLETED --expires_at passes--> (none)
                        |      ^
                release |      | claim again, once the lease has ended (crash, timeout)
                        v      |
                      (none) --+

Each arrow is a single conditional write, so two racing copies cannot both win, and no
read is ever needed: a fresh unit costs two requests (claim, complete) and a duplicate one
(the refused claim, which returns the record it lost to). Expiry is compared inside the
condition because DynamoDB's TTL deletes expired items only eventually, often days late.

When the table cannot be reached, no work runs and nothing is acknowledged
(:class:`StoreUnavailable`): a late retry is cheap, a lost or doubled unit is not.
{%- if source.http %}

For HTTP requests the record also keeps a hash of the request (method, path, body) and, once
done, the response: a duplicate gets that response again, marked as a replay; the same key
with a different request is refused; a 5xx response is a failure, so it is not kept.
{%- endif %}
"""

from __future__ import annotations

import json
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TABLE_NAME_ENV = "DEDUP_TABLE_NAME"
TTL_SECONDS_ENV = "DEDUP_TTL_SECONDS"
OPERATION_ENV = "DEDUP_OPERATION"
# template.yaml's DedupTtlSeconds default (README.md says why), for when DEDUP_TTL_SECONDS is unset.
DEFAULT_TTL_SECONDS = {{ sam.ttl_seconds }}

# Attribute names. template.yaml declares KEY as the partition key and EXPIRES_AT as the TTL.
KEY = "id"
STATUS = "status"
EXPIRES_AT = "expires_at"  # epoch seconds: when the record stops counting (and TTL may delete it)
LEASE_EXPIRES_AT = "lease_expires_at"  # epoch seconds: when an IN_PROGRESS claim may be taken over
CLAIM_TOKEN = "claim_token"  # proves which invocation holds the claim
{%- if source.http %}
REQUEST_HASH = "request_hash"  # what the request was: the same key must come with the same one
RESPONSE = "response"  # the first response, as JSON: what every duplicate gets
{%- endif %}

# Fail fast: a unit that waits out long retries here is better retried by the event source.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},  # the first try and two retries
    connect_timeout=2,
    read_timeout=2,
)

_client: BaseClient | None = None


class LambdaContext(Protocol):
    """The part of the Lambda context object this module uses."""

    function_name: str

    def get_remaining_time_in_millis(self) -> int: ...


class State(Enum):
    """What a claim found."""

    CLAIMED = "claimed"  # this invocation now holds the unit: do the work
    COMPLETED = "completed"  # done before: skip it
    IN_PROGRESS = "in_progress"  # another invocation holds it: do not acknowledge
{%- if not source.http %}


class Outcome(Enum):
    """What :func:`run_once` did with a unit."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
{%- endif %}


@dataclass(frozen=True)
class Claim:
    """The result of one claim attempt. ``token`` is set only when ``state`` is CLAIMED."""

    key: str
    state: State
    token: str | None = None
{%- if source.http %}
    holder: dict[str, Any] | None = None  # the record a refused claim lost to
{%- endif %}


class StoreUnavailable(Exception):
    """The dedup table could not be written (or is not configured): run nothing, ack nothing."""


class InProgressElsewhere(Exception):
    """Another invocation is working on this unit: report it failed so that it comes back."""


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def dynamodb_client() -> BaseClient:
    """The DynamoDB client: one per container, created on first use (not at import)."""
    global _client
    if _client is None:
        _client = boto3.client("dynamodb", config=_CLIENT_CONFIG)
    return _client


def use_client(client: BaseClient | None) -> None:
    """Replace the client (tests pass one bound to moto); ``None`` goes back to the default."""
    global _client
    _client = client


def dedup_key(unit_id: str, context: LambdaContext) -> str:
    """``<operation>#<unit id>``: the operation is DEDUP_OPERATION, else the function name."""
    operation = os.environ.get(OPERATION_ENV) or context.function_name
    return f"{operation}#{unit_id}"
{%- if source.http %}


# HTTP requests: the first response is kept with the record and replayed to every duplicate.

REPLAYED_HEADER = "Idempotency-Replayed"
BODY_OMITTED_HEADER = "Idempotency-Body-Omitted"
# A DynamoDB item holds at most 400 KB (409,600 bytes), its key and other attributes included.
# Those take a few hundred bytes; the rest of the headroom is for safety.
MAX_STORED_RESPONSE_BYTES = 350_000

Response = dict[str, Any]


class RequestMismatch(Exception):
    """The key came with a different request before (method, path or body): refuse it."""


def respond_once(
    key: str, request_hash: str, context: LambdaContext, respond: Callable[[], Response]
) -> Response:
    """Answer the request under ``key`` with ``respond()`` once; answer duplicates from the record.

    A duplicate gets the stored response again, with REPLAYED_HEADER. Raises RequestMismatch,
    InProgressElsewhere, StoreUnavailable, or whatever ``respond`` raised, after releasing the
    claim. A 5xx response is a failure too: it is returned but not stored, and the claim is
    released, so that the client's retry runs.
    """
    lease_seconds = context.get_remaining_time_in_millis() / 1000
    claim_result = claim(key, lease_seconds, request_hash)
    if claim_result.state is not State.CLAIMED:
        return _replay(claim_result, request_hash)
    try:
        response = respond()
    except Exception as error:
        log_decision("failed", key, error=repr(error), traceback=traceback.format_exc())
        release(claim_result)
        raise
    status_code = response.get("statusCode")
    if isinstance(status_code, int) and status_code >= 500:
        log_decision("failed", key, status_code=status_code)
        release(claim_result)
        return response
    complete(claim_result, _storable(key, response))
    log_decision("processed", key)
    return response


def _replay(refused: Claim, request_hash: str) -> Response:
    """The answer to a refused claim: a mismatch, still in progress, or the stored response."""
    holder = refused.holder or {}
    if holder.get(REQUEST_HASH, {}).get("S") != request_hash:
        log_decision("request_mismatch", refused.key)
        raise RequestMismatch(refused.key)
    if refused.state is State.IN_PROGRESS:
        log_decision("in_progress", refused.key)
        raise InProgressElsewhere(refused.key)
    log_decision("duplicate_skipped", refused.key)
    response = json.loads(holder[RESPONSE]["S"])
    response["headers"] = {**(response.get("headers") or {}), REPLAYED_HEADER: "true"}
    return response


def _storable(key: str, response: Response) -> str:
    """The response as JSON for the record; without its body when it would not fit.

    Duplicates of a response stored without its body get its status code and headers, an
    empty body and BODY_OMITTED_HEADER: the work is done, and is not done again.
    """
    stored = json.dumps(response)
    size = len(stored.encode())
    if size <= MAX_STORED_RESPONSE_BYTES:
        return stored
    log_decision(
        "response_too_large",
        key,
        size_bytes=size,
        limit_bytes=MAX_STORED_RESPONSE_BYTES,
        detail="stored without its body: duplicates get the status code and headers only",
    )
    kept = {name: value for name, value in response.items() if name != "isBase64Encoded"}
    headers = {**(response.get("headers") or {}), BODY_OMITTED_HEADER: "true"}
    return json.dumps({**kept, "headers": headers, "body": ""})
{%- else %}


def run_once(key: str, context: LambdaContext, work: Callable[[], object]) -> Outcome:
    """Run ``work`` unless the unit under ``key`` has already completed.

    Returns PROCESSED or DUPLICATE. Raises InProgressElsewhere, StoreUnavailable, or
    whatever ``work`` raised, after releasing the claim so that the retry runs at once.
    The lease lasts as long as this invocation may: its remaining time.
    """
    claim_result = claim(key, lease_seconds=context.get_remaining_time_in_millis() / 1000)
    if claim_result.state is State.COMPLETED:
        log_decision("duplicate_skipped", key)
        return Outcome.DUPLICATE
    if claim_result.state is State.IN_PROGRESS:
        log_decision("in_progress", key)
        raise InProgressElsewhere(key)
    try:
        work()
    except Exception as error:
        log_decision("failed", key, error=repr(error), traceback=traceback.format_exc())
        release(claim_result)
        raise
    complete(claim_result)
    log_decision("processed", key)
    return Outcome.PROCESSED
{%- endif %}


def claim(key: str, lease_seconds: float{% if source.http %}, request_hash: str = ""{% endif %}) -> Claim:
    """Take the unit with one conditional put, or report who holds it.

    The put wins when there is no record, when the record has expired, or when it is
    IN_PROGRESS and its lease has ended (the holder crashed or timed out). Raises
    StoreUnavailable, logged, when the table cannot be written.
    """
    now = time.time()
    token = uuid.uuid4().hex
    item = {
        KEY: {"S": key},
        STATUS: {"S": "IN_PROGRESS"},
        CLAIM_TOKEN: {"S": token},
        LEASE_EXPIRES_AT: {"N": _number(now + lease_seconds)},
        EXPIRES_AT: {"N": str(int(now) + ttl_seconds())},
{%- if source.http %}
        REQUEST_HASH: {"S": request_hash},
{%- endif %}
    }
    try:
        _send(
            "put_item",
            Item=item,
            ConditionExpression=(
                "attribute_not_exists(#key) OR #expires_at < :now"
                " OR (#status = :in_progress AND #lease_expires_at < :now)"
            ),
            ExpressionAttributeNames={
                "#key": KEY,
                "#status": STATUS,
                "#expires_at": EXPIRES_AT,
                "#lease_expires_at": LEASE_EXPIRES_AT,
            },
            ExpressionAttributeValues={
                ":now": {"N": _number(now)},
                ":in_progress": {"S": "IN_PROGRESS"},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except StoreUnavailable as error:
        log_decision("store_unavailable", key, error=str(error))
        raise
    except _ConditionFailed as refused:
        holder_state = refused.item.get(STATUS, {}).get("S")
{%- if source.http %}
        state = State.COMPLETED if holder_state == "COMPLETED" else State.IN_PROGRESS
        return Claim(key, state, holder=refused.item)
{%- else %}
        return Claim(key, State.COMPLETED if holder_state == "COMPLETED" else State.IN_PROGRESS)
{%- endif %}
    return Claim(key, State.CLAIMED, token)


def complete(claim_result: Claim{% if source.http %}, response: str = ""{% endif %}) -> None:
    """Mark the unit COMPLETED for the full TTL, if this invocation still holds it.

    The condition on the claim token keeps a copy whose lease lapsed from overwriting the
    copy that took over. Never raises: the work is done, and failing the unit now would only
    make it run again. If the write fails, the record stays IN_PROGRESS until its lease ends.
    """
    try:
        _send(
            "update_item",
            Key={KEY: {"S": claim_result.key}},
            UpdateExpression="SET #status = :completed, #expires_at = :expires_at"
{%- if source.http %}
            ", #response = :response"
{%- endif %}
            " REMOVE #lease_expires_at",
            ConditionExpression="#claim_token = :token",
            ExpressionAttributeNames={
                "#status": STATUS,
                "#expires_at": EXPIRES_AT,
                "#lease_expires_at": LEASE_EXPIRES_AT,
                "#claim_token": CLAIM_TOKEN,
{%- if source.http %}
                "#response": RESPONSE,
{%- endif %}
            },
            ExpressionAttributeValues={
                ":completed": {"S": "COMPLETED"},
                ":expires_at": {"N": str(int(time.time()) + ttl_seconds())},
                ":token": {"S": _token(claim_result)},
{%- if source.http %}
                ":response": {"S": response},
{%- endif %}
            },
        )
    except _ConditionFailed:
        log_decision("lease_lost", claim_result.key, detail="another invocation took over")
    except StoreUnavailable as error:
        log_decision("completion_not_recorded", claim_result.key, error=str(error))


def release(claim_result: Claim) -> None:
    """Delete the claim after a failure, so that the retry runs without waiting for the lease.

    Conditioned on the claim token: a copy whose lease lapsed must not delete the record of
    the copy that took over. Never raises: the failure being handled matters more, and an
    unreleased claim still ends with its lease.
    """
    try:
        _send(
            "delete_item",
            Key={KEY: {"S": claim_result.key}},
            ConditionExpression="#claim_token = :token",
            ExpressionAttributeNames={"#claim_token": CLAIM_TOKEN},
            ExpressionAttributeValues={":token": {"S": _token(claim_result)}},
        )
    except _ConditionFailed:
        log_decision("lease_lost", claim_result.key, detail="another invocation took over")
    except StoreUnavailable as error:
        log_decision("release_failed", claim_result.key, error=str(error))
    else:
        log_decision("released", claim_result.key)


_LEVELS = {
    "processed": "INFO",
    "duplicate_skipped": "INFO",
    "released": "INFO",
    "in_progress": "WARNING",
    "lease_lost": "WARNING",
    "failed": "ERROR",
    "unidentified": "ERROR",
    "store_unavailable": "ERROR",
    "completion_not_recorded": "ERROR",
    "release_failed": "ERROR",
{%- if source.http %}
    "request_mismatch": "WARNING",
    "response_too_large": "WARNING",
{%- endif %}
}


def log_decision(decision: str, key: str | None, **details: object) -> None:
    """Print one JSON object on one line: Lambda ships stdout to CloudWatch Logs line by line,
    and Logs Insights reads the fields of a JSON line without any parse step."""
    entry = {"level": _LEVELS.get(decision, "INFO"), "decision": decision, "dedup_key": key}
    print(json.dumps({**entry, **details}, default=str), flush=True)


def table_name() -> str:
    name = os.environ.get(TABLE_NAME_ENV)
    if not name:
        raise StoreUnavailable(f"{TABLE_NAME_ENV} is not set (template.yaml sets it)")
    return name


def ttl_seconds() -> int:
    return int(os.environ.get(TTL_SECONDS_ENV) or DEFAULT_TTL_SECONDS)


def _send(operation: str, **request: Any) -> None:
    """Send one conditional write; turn every failure into _ConditionFailed or StoreUnavailable."""
    try:
        getattr(dynamodb_client(), operation)(TableName=table_name(), **request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise _ConditionFailed(error.response.get("Item", {})) from None
        raise StoreUnavailable(str(error)) from error
    except BotoCoreError as error:
        raise StoreUnavailable(str(error)) from error


def _token(claim_result: Claim) -> str:
    if claim_result.token is None:
        raise ValueError(f"{claim_result.key} was not claimed by this invocation")
    return claim_result.token


def _number(seconds: float) -> str:
    return f"{seconds:.3f}"
