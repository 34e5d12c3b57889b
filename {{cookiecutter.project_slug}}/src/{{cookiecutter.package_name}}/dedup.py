{%- import "common/source.j2" as source with context -%}
"""Do each unit of work once, although the event source delivers it at least once.

{{ source.name }} may deliver the same {{ source.unit }} to this function more than once:
minutes or days apart, or at the same moment to two concurrent invocations. This module
records every unit in a DynamoDB table under the key ``<operation>#<unit id>`` and keeps
three promises:

* a unit whose work completed is skipped when it comes again, until its record expires;
* a unit that another invocation is still working on is never acknowledged:
  {{ source.held_elsewhere }}
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
completion (:func:`complete_with`): they happen exactly once. When the table cannot be
reached, no work runs and nothing is acknowledged (store.StoreUnavailable): a late retry is
cheap, a lost or doubled unit is not.
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
    """Another invocation holds this unit: do not acknowledge it, so that it comes back."""


def lease_seconds(context: LambdaContext) -> float:
    """A claim lasts as long as this invocation may: its remaining time."""
    return context.get_remaining_time_in_millis() / 1000


def run_once(key: str, context: LambdaContext, work: Callable[[], object]) -> bool:
    """Run ``work`` unless the unit under ``key`` has already completed; True if it ran now.

    Returns once the unit may be acknowledged (False: it was a duplicate). Raises
    InProgressElsewhere, store.StoreUnavailable, effects.WriteRefused, or whatever ``work``
    raised, after releasing the claim so that the retry runs at once.
    """
    claimed = claim(key, lease_seconds(context))
    if not admit(claimed):
        return False
    _, writes = attempt(claimed, work)
    if writes:
        complete_with(claimed, writes)
    else:
        complete(claimed)
    return True


def admit(claimed: Claim) -> bool:
    """True when this invocation holds the unit; False for a duplicate of a completed one.

    Raises InProgressElsewhere when another invocation holds it. Reports either refusal.
    """
    if claimed.state == State.COMPLETED:
        decisions.report("duplicate_skipped", claimed.key)
        return False
    if claimed.state == State.IN_PROGRESS:
        raise held_elsewhere(claimed)
    return True


def held_elsewhere(claimed: Claim) -> InProgressElsewhere:
    """Report that another invocation holds the unit; return the error to raise for it."""
    decisions.report("in_progress", claimed.key)
    return InProgressElsewhere(claimed.key)


def attempt(claimed: Claim, work: Callable[[], Any]) -> tuple[Any, list[effects.Write]]:
    """Run the work of a claimed unit; return what it returned and the writes it enlisted.

    When the work raises, the failure is reported, the claim released, and the error raised.
    """
    try:
        with effects.collecting(claimed.key) as writes:
            result = work()
    except Exception as error:
        abandon(claimed, "failed", error=repr(error), traceback=traceback.format_exc())
        raise
    return result, writes


def abandon(claimed: Claim, decision: str, **details: object) -> None:
    """Report why the claimed unit is not done, and release it so that the retry runs at once."""
    decisions.report(decision, claimed.key, **details)
    release(claimed)


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
            EXPIRES_AT: store.expiry(now),
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


def complete(claimed: Claim, record: store.Item | None = None) -> None:
    """Mark the unit COMPLETED for the full TTL, with ``record``'s attributes; report how it ended.

    Never raises: the work is done, and failing the unit now would only make it run again. If
    the write fails, the record stays IN_PROGRESS until its lease ends; if another copy took
    the unit over, that copy completes it.
    """
    try:
        store.send("update_item", **_completion(claimed, record))
    except store.ConditionFailed as refused:
        _completed_before(claimed, refused.item)
    except store.StoreUnavailable as error:
        decisions.report("completion_not_recorded", claimed.key, error=str(error))
    else:
        decisions.report("processed", claimed.key)


def complete_with(
    claimed: Claim, writes: Sequence[effects.Write], record: store.Item | None = None
) -> None:
    """Commit ``writes`` and the completion together (effects.commit), or neither.

    Returns once they have committed, so that the unit may be acknowledged. Otherwise raises
    InProgressElsewhere (another copy took the unit over, and does the writes),
    store.StoreUnavailable (nothing was committed, and the claim is released for the retry),
    or effects.WriteRefused (a write's own condition failed: the work failed, and the claim
    is released).
    """
    try:
        effects.commit(writes, _completion(claimed, record), _token(claimed))
    except store.ConditionFailed as refused:
        if not _completed_before(claimed, refused.item):  # none of this copy's writes landed
            raise InProgressElsewhere(claimed.key) from None
    except effects.WriteRefused as error:
        abandon(claimed, "failed", error=repr(error))
        raise
    except store.StoreUnavailable as error:
        if _release(claimed):  # the transaction had committed; only its answer was lost
            return
        decisions.report("completion_not_recorded", claimed.key, error=str(error))
        raise
    else:
        decisions.report("processed", claimed.key)


def release(claimed: Claim) -> None:
    """Delete the claim after a failure, so that the retry runs without waiting for the lease.

    Conditioned on the claim token, and on the unit not being completed: a copy whose lease
    lapsed must not delete the record of the copy that took over. Never raises: the failure
    being handled matters more, and an unreleased claim still ends with its lease.
    """
    _release(claimed)


def _release(claimed: Claim) -> bool:
    """:func:`release`; True when, instead, it found this claim's own completion (a commit
    whose answer was lost: see complete_with)."""
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
        if refused.item:
            return _completed_before(claimed, refused.item)
        # No record at all: an earlier try of this delete landed and its answer was lost.
    except store.StoreUnavailable as error:
        decisions.report("release_failed", claimed.key, error=str(error))
        return False
    decisions.report("released", claimed.key)
    return False


def _completed_before(claimed: Claim, holder: store.Item) -> bool:
    """Whether ``holder``, the record that refused a write conditioned on STILL_HELD, is this
    claim's own completion (an earlier try landed, its answer lost) rather than the claim of
    a copy that took the unit over. Reports which: processed, or lease_lost."""
    if _token_of(holder) == claimed.token:
        decisions.report("processed", claimed.key)
        return True
    decisions.report("lease_lost", claimed.key, detail="another invocation took over")
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
    kept = {EXPIRES_AT: store.expiry(time.time()), **(record or {})}
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


def _token_of(item: store.Item) -> str | None:
    return item.get(CLAIM_TOKEN, {}).get("S")


def _token(claimed: Claim) -> str:
    if claimed.token is None:
        raise ValueError(f"{claimed.key} was not claimed by this invocation")
    return claimed.token


def _number(seconds: float) -> str:
    return f"{seconds:.3f}"
