{%- import "sources.j2" as source with context -%}
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

Each arrow is one conditional write, so two racing copies cannot both win, and no read is
ever needed: a fresh unit costs two requests (claim, complete) and a duplicate one (the
refused claim, which returns the record it lost to). Every claim carries a random token, and
complete and release act only on a record that still holds theirs: a copy whose lease lapsed
cannot touch the record of the copy that took over, and a write whose answer was lost (the
client sent it again) recognises its own token on the retry instead of mistaking itself for
another copy. Expiry is compared inside the condition because DynamoDB's TTL deletes expired
items only eventually, often days late.

DynamoDB writes that the work enlists (effects.py) are committed in one transaction with the
completion: they happen exactly once. When the table cannot be reached, no work runs and
nothing is acknowledged (store.StoreUnavailable): a late retry is cheap, a lost or doubled
unit is not.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import decisions, effects, store

if TYPE_CHECKING:
    from .keys import LambdaContext

# Attribute names. template.yaml declares KEY as the partition key and EXPIRES_AT as the TTL.
KEY = "id"
STATUS = "status"  # State.IN_PROGRESS or State.COMPLETED
EXPIRES_AT = "expires_at"  # epoch seconds: when the record stops counting (and TTL may delete it)
LEASE_EXPIRES_AT = "lease_expires_at"  # epoch seconds: when an IN_PROGRESS claim may be taken over
CLAIM_TOKEN = "claim_token"  # which claim wrote the record

# A claim wins when one of these holds (expiry is compared here: DynamoDB's TTL deletes late).
NO_RECORD = "attribute_not_exists(#key)"
RECORD_EXPIRED = "#expires_at < :now"
LEASE_LAPSED = "(#status = :in_progress AND #lease_expires_at < :now)"
# Complete and release act only on a record that this claim still holds.
STILL_HELD = "#claim_token = :token AND #status = :in_progress"


class State:
    """What a unit's record says: the two statuses it stores, and CLAIMED, which a claim
    returns when this invocation wrote the record. (Plain names, not an Enum, and Claim is a
    plain class: importing this module is part of every cold start, and they cost less.)"""

    CLAIMED = "CLAIMED"  # this invocation now holds the unit: do the work
    COMPLETED = "COMPLETED"  # done before: skip it
    IN_PROGRESS = "IN_PROGRESS"  # another invocation holds it: do not acknowledge


class Claim:
    """The result of one claim attempt. ``token`` is set only when ``state`` is CLAIMED."""

    __slots__ = ("holder", "key", "state", "token")

    def __init__(
        self, key: str, state: str, token: str | None = None, holder: store.Item | None = None
    ) -> None:
        self.key = key
        self.state = state
        self.token = token
        self.holder = holder or {}  # the record a refused claim lost to


class InProgressElsewhere(Exception):
    """Another invocation holds this unit: report it failed so that it comes back."""


def lease_seconds(context: LambdaContext) -> float:
    """A claim lasts as long as this invocation may: its remaining time."""
    return context.get_remaining_time_in_millis() / 1000


def run_once(key: str, context: LambdaContext, work: Callable[[], object]) -> bool:
    """Run ``work`` unless the unit under ``key`` has already completed; True if it ran now.

    Returns once the unit may be acknowledged (False: it was a duplicate). Raises
    InProgressElsewhere, store.StoreUnavailable, or whatever ``work`` raised, after releasing
    the claim so that the retry runs at once.
    """
    claimed = claim(key, lease_seconds(context))
    if not admit(claimed):
        return False
    _, writes = attempt(claimed, work)
    complete(claimed, writes=writes)
    return True


def admit(claimed: Claim) -> bool:
    """True when this invocation holds the unit; False for a duplicate of a completed one.

    Raises InProgressElsewhere when another invocation holds it. Reports either refusal.
    """
    if claimed.state == State.COMPLETED:
        decisions.report("duplicate_skipped", claimed.key)
        return False
    if claimed.state == State.IN_PROGRESS:
        decisions.report("in_progress", claimed.key)
        raise InProgressElsewhere(claimed.key)
    return True


def attempt(claimed: Claim, work: Callable[[], Any]) -> tuple[Any, list[effects.Write]]:
    """Run the work of a claimed unit; return what it returned and the writes it enlisted.

    When the work raises, the failure is reported, the claim released, and the error raised.
    """
    try:
        with effects.collecting(claimed.key) as writes:
            result = work()
    except Exception as error:
        decisions.report("failed", claimed.key, error=repr(error), traceback=traceback.format_exc())
        release(claimed)
        raise
    return result, writes


def claim(key: str, lease_seconds: float, record: store.Item | None = None) -> Claim:
    """Take the unit with one conditional put (with ``record``'s attributes), or say who has it.

    The put wins when there is no record, when the record has expired, or when it is
    IN_PROGRESS and its lease has ended (the holder crashed or timed out). Raises
    store.StoreUnavailable, reported, when the table cannot be written.
    """
    token = uuid.uuid4().hex
    try:
        now = time.time()
        item = {
            KEY: {"S": key},
            STATUS: {"S": State.IN_PROGRESS},
            CLAIM_TOKEN: {"S": token},
            LEASE_EXPIRES_AT: {"N": _number(now + lease_seconds)},
            EXPIRES_AT: {"N": str(int(now) + store.ttl_seconds())},
            **(record or {}),
        }
        store.send(
            "put_item",
            Item=item,
            ConditionExpression=f"{NO_RECORD} OR {RECORD_EXPIRED} OR {LEASE_LAPSED}",
            ExpressionAttributeNames={
                "#key": KEY,
                "#status": STATUS,
                "#expires_at": EXPIRES_AT,
                "#lease_expires_at": LEASE_EXPIRES_AT,
            },
            ExpressionAttributeValues={
                ":now": {"N": _number(now)},
                ":in_progress": {"S": State.IN_PROGRESS},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except store.StoreUnavailable as error:
        decisions.report("store_unavailable", key, error=str(error))
        raise
    except store.ConditionFailed as refused:
        holder = refused.item
        if _token_of(holder) == token:  # this put landed; the retry of its lost answer did not
            return Claim(key, State.CLAIMED, token)
        completed = holder.get(STATUS, {}).get("S") == State.COMPLETED
        return Claim(key, State.COMPLETED if completed else State.IN_PROGRESS, holder=holder)
    return Claim(key, State.CLAIMED, token)


def complete(
    claimed: Claim, record: store.Item | None = None, writes: Sequence[effects.Write] = ()
) -> None:
    """Mark the unit COMPLETED for the full TTL, with ``record``'s attributes and ``writes``.

    Returns once the unit may be acknowledged, and reports how it ended. Without enlisted
    writes that is always: the work is done, and failing the unit now would only make it run
    again (if the write fails, the record stays IN_PROGRESS until its lease ends). With them,
    the writes and the completion commit together or not at all, so the unit is acknowledged
    only once they have: otherwise this raises InProgressElsewhere (another copy took the unit
    over, and does the writes), store.StoreUnavailable (nothing was committed, and the claim
    is released for the retry), or effects.WriteRefused (a write's own condition failed: the
    work failed).
    """
    try:
        update = _completion(claimed, record)
        if writes:
            _commit(claimed, update, writes)
        else:
            store.send("update_item", **update)
    except store.ConditionFailed as refused:
        if _is_own(refused.item, claimed):  # an earlier try landed; its answer was lost
            decisions.report("processed", claimed.key)
            return
        decisions.report("lease_lost", claimed.key, detail="another invocation took over")
        if writes:  # none of this copy's writes landed: the copy that took over does them
            raise InProgressElsewhere(claimed.key) from None
        return
    except store.StoreUnavailable as error:
        if writes and release(claimed):  # the transaction had committed after all
            return
        decisions.report("completion_not_recorded", claimed.key, error=str(error))
        if writes:
            raise
        return
    decisions.report("processed", claimed.key)


def release(claimed: Claim) -> bool:
    """Delete the claim after a failure, so that the retry runs without waiting for the lease.

    Conditioned on the claim token, and on the unit not being completed: a copy whose lease
    lapsed must not delete the record of the copy that took over. Never raises: the failure
    being handled matters more, and an unreleased claim still ends with its lease. Returns
    True only when there was nothing to release because this claim's completion committed
    (a transaction whose answer was lost: see complete).
    """
    try:
        store.send(
            "delete_item",
            Key={KEY: {"S": claimed.key}},
            ConditionExpression=STILL_HELD,
            ExpressionAttributeNames={"#claim_token": CLAIM_TOKEN, "#status": STATUS},
            ExpressionAttributeValues={
                ":token": {"S": _token(claimed)},
                ":in_progress": {"S": State.IN_PROGRESS},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except store.ConditionFailed as refused:
        if _is_own(refused.item, claimed):  # only its own completion refuses a claim's release
            decisions.report("processed", claimed.key)
            return True
        if refused.item:
            decisions.report("lease_lost", claimed.key, detail="another invocation took over")
            return False
        # No record at all: an earlier try of this delete landed and its answer was lost.
    except store.StoreUnavailable as error:
        decisions.report("release_failed", claimed.key, error=str(error))
        return False
    decisions.report("released", claimed.key)
    return False


def _completion(claimed: Claim, record: store.Item | None) -> dict[str, Any]:
    """The conditional update that marks a claimed unit COMPLETED, as request parameters."""
    names = {"#status": STATUS, "#lease": LEASE_EXPIRES_AT, "#claim_token": CLAIM_TOKEN}
    values = {
        ":completed": {"S": State.COMPLETED},
        ":in_progress": {"S": State.IN_PROGRESS},
        ":token": {"S": _token(claimed)},
    }
    assignments = ["#status = :completed"]
    # The record may carry its own expiry (a response kept in chunks expires with them).
    kept = {EXPIRES_AT: {"N": str(int(time.time()) + store.ttl_seconds())}, **(record or {})}
    for index, (name, value) in enumerate(kept.items()):
        names[f"#set{index}"], values[f":set{index}"] = name, value
        assignments.append(f"#set{index} = :set{index}")
    return {
        "Key": {KEY: {"S": claimed.key}},
        "UpdateExpression": f"SET {', '.join(assignments)} REMOVE #lease",
        "ConditionExpression": STILL_HELD,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _commit(claimed: Claim, update: dict[str, Any], writes: Sequence[effects.Write]) -> None:
    """The enlisted writes and the completion, in one transaction (see complete)."""
    completion = {"Update": {"TableName": store.table_name(), **update}}
    try:
        # The token makes DynamoDB answer a retry of a transaction that committed with
        # success (for 10 minutes) instead of running it again.
        store.call(
            "transact_write_items",
            TransactItems=[*writes, completion],
            ClientRequestToken=_token(claimed),
        )
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
            error = effects.WriteRefused(refused, [for_writes[i] for i in refused])
            decisions.report("failed", claimed.key, error=repr(error))
            release(claimed)
            raise error from None
        raise store.StoreUnavailable(f"transaction canceled: {canceled}") from None


def _is_own(item: store.Item, claimed: Claim) -> bool:
    return _token_of(item) == claimed.token


def _token_of(item: store.Item) -> str | None:
    return item.get(CLAIM_TOKEN, {}).get("S")


def _token(claimed: Claim) -> str:
    if claimed.token is None:
        raise ValueError(f"{claimed.key} was not claimed by this invocation")
    return claimed.token


def _number(seconds: float) -> str:
    return f"{seconds:.3f}"
