{%- import "common/source.j2" as source with context -%}
"""The key each unit of work goes under in the dedup table: ``<operation>#<unit id>``.

The operation is the function's name, or ``DEDUP_OPERATION`` when several functions (or
versions of one) must share, or must not share, what they have done. The unit id is the
{%- if source.http %}
request's, built from the client's ``Idempotency-Key`` and the caller (events.py).
{%- else %}
source's own id for the unit, unless service.py defines ``unit_id(unit)``: then it is the id
that function returns, a business id such as an order id, so that a producer's retry (which
the platform gives a new id) is a duplicate too. A unit with no id to go by cannot be
deduplicated: it gets no key, and its caller fails it alone.
{%- endif %}
"""

from __future__ import annotations

import hashlib
import os
{%- if source.http %}
from typing import Protocol

from . import store
{%- else %}
from collections.abc import Callable
from typing import Any, Protocol

from . import decisions, store
{%- endif %}

OPERATION_ENV = "DEDUP_OPERATION"
MAX_OPERATION_BYTES = 256

# A unit id goes into the key as it is when it is short and valid UTF-8; any other id (DynamoDB
# keys hold at most 2048 bytes) goes in as HASHED_ID_PREFIX + its SHA-256, as does an id that
# itself starts with that prefix, so that no readable id can stand for a hashed one.
MAX_READABLE_ID_BYTES = 512
HASHED_ID_PREFIX = "sha256:"

{%- if not source.http %}

BusinessId = Callable[[Any], "str | None"]  # service.unit_id, when service.py defines it
{%- endif %}


class LambdaContext(Protocol):
    """The part of the Lambda context object that the handlers use."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


def operation(context: LambdaContext) -> str:
    """The first part of every key: DEDUP_OPERATION if set, else the function's name."""
    return valid_operation(os.environ.get(OPERATION_ENV) or context.function_name)


def valid_operation(name: str) -> str:
    """``name``, when it can be the first part of a key; else store.NotConfigured."""
    if "#" in name or len(name.encode()) > MAX_OPERATION_BYTES:
        raise store.NotConfigured(
            f"{OPERATION_ENV} {name!r} must not contain '#' nor be over {MAX_OPERATION_BYTES} bytes"
        )
    return name


def key(unit_id: str, context: LambdaContext) -> str:
    """``<operation>#<unit id>``, the unit id hashed when it is long or not valid UTF-8."""
    return key_in(operation(context), unit_id)


def key_in(operation_name: str, unit_id: str) -> str:
    """:func:`key` for an operation already known: tools/records.py finds keys through it."""
    try:
        readable = len(unit_id.encode()) <= MAX_READABLE_ID_BYTES
    except UnicodeEncodeError:  # a lone surrogate, from JSON such as "\ud800"
        readable = False
    if not readable or unit_id.startswith(HASHED_ID_PREFIX):
        digest = hashlib.sha256(unit_id.encode("utf-8", "surrogatepass")).hexdigest()
        unit_id = HASHED_ID_PREFIX + digest
    return f"{operation_name}#{unit_id}"


{%- if not source.http %}


class Unidentified(ValueError):
    """The unit has no id to deduplicate it by; the message says why."""


def unit_id(unit: Any, own_id: str, missing: str, business_id: BusinessId | None) -> str:
    """The id to deduplicate ``unit`` by: ``business_id(unit)`` when the service defines
    one, else the source's ``own_id``. Raises Unidentified, saying why (``missing``: why
    ``own_id`` is empty), when there is none."""
    if business_id is None:
        if not own_id:
            raise Unidentified(missing)
        return own_id
    try:
        chosen = business_id(unit)
    except Exception as error:
        raise Unidentified(f"service.unit_id raised {error!r}") from error
    if not isinstance(chosen, str) or not chosen:
        raise Unidentified(f"service.unit_id returned {chosen!r}, not an id")
    return chosen


def key_of(
    unit: Any,
    context: LambdaContext,
    *,
    own_id: str,
    missing: str,
    business_id: BusinessId | None,
    **details: object,
) -> str | None:
    """The unit's key, or None, reported as ``unidentified`` with ``details``, when it has no
    id (see :func:`unit_id`)."""
    try:
        chosen = unit_id(unit, own_id, missing, business_id)
    except Unidentified as why:
        decisions.report(
            "unidentified", None, operation=operation(context), reason=str(why), **details
        )
        return None
    return key(chosen, context)
{%- endif %}
