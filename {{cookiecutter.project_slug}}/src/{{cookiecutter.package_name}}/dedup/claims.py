{%- import "common/source.j2" as source with context -%}
"""Do each unit of work once, although the event source delivers it at least once.

{% filter wordwrap(95, break_long_words=False, break_on_hyphens=False, wrapstring="\n") -%}
{{ source.name }} may deliver the same {{ source.unit }} to this function more than once: minutes or days apart, or at the same moment to two concurrent invocations. This module records every unit in a DynamoDB table under the key ``<operation>#<unit id>`` and keeps three promises:
{%- endfilter %}

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

DynamoDB writes that the work enlists (effects.py) commit in one transaction with the
completion (:func:`complete_with`): exactly once. When the table cannot be reached, no work
runs and nothing is acknowledged (store.StoreUnavailable): a late retry is cheap, a lost or
doubled unit is not. once.py walks each unit through these steps.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from . import decisions, effects, store

# Attribute names. template.yaml declares KEY as the partition key and EXPIRES_AT as the TTL.
KEY = "id"
STATUS = "status"  # State.IN_PROGRESS or State.COMPLETED{% if not source.http %} (or State.IN_DOUBT){% endif %}
EXPIRES_AT = "expires_at"  # epoch seconds: when the record stops counting (and TTL may delete it)
LEASE_EXPIRES_AT = "lease_expires_at"  # epoch seconds: when an IN_PROGRESS claim may be taken over
CLAIM_TOKEN = "claim_token"  # which claim wrote the record
{%- if not source.http %}
# A record IN_DOUBT (at most once) also says since when, why, and, when it fits, what the unit was.
IN_DOUBT_SINCE = "in_doubt_since"  # epoch seconds: when it went in doubt
IN_DOUBT_REASON = "in_doubt_reason"  # what is known: "raised: <repr>", "lease lapsed", ...
UNIT = "unit"  # the unit as delivered, as JSON, when it fits in the item with room to spare
{%- endif %}

# A claim wins when one of these holds (expiry is compared here: DynamoDB's TTL deletes late).
NO_RECORD = "attribute_not_exists(#key)"
RECORD_EXPIRED = "#expires_at < :now"
LEASE_LAPSED = "(#status = :in_progress AND #lease_expires_at < :now)"
# Complete and release act only on a record that this claim still holds.
STILL_HELD = "#claim_token = :token AND #status = :in_progress"


class State:
    """The two statuses a record stores, and CLAIMED: this invocation wrote it. (Plain names,
    not an Enum, and a plain Claim class: this module is imported on every cold start.)"""

    CLAIMED = "CLAIMED"  # this invocation now holds the unit: do the work
    COMPLETED = "COMPLETED"  # done before: skip it
    IN_PROGRESS = "IN_PROGRESS"  # another invocation holds it: do not acknowledge
{%- if not source.http %}
    IN_DOUBT = "IN_DOUBT"  # its work may have run (at most once): acknowledge, never run
{%- endif %}


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


def claim(key: str, lease_seconds: float, record: store.Item | None = None) -> Claim:
    """Take the unit with one conditional put (with ``record``'s attributes), or say who has it.

    The put wins when there is no record, when it has expired, or when it is IN_PROGRESS and
    its lease has ended (the holder crashed or timed out). Raises store.StoreUnavailable.
    """
    token = uuid.uuid4().hex
    try:
        now = time.time()
        item = {
            KEY: {"S": key},
            STATUS: {"S": State.IN_PROGRESS},
            CLAIM_TOKEN: {"S": token},
            LEASE_EXPIRES_AT: {"N": f"{now + lease_seconds:.3f}"},
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
                ":now": {"N": f"{now:.3f}"},
                ":in_progress": {"S": State.IN_PROGRESS},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except store.StoreUnavailable as error:
        decisions.report("store_unavailable", key, error=str(error))
        raise
    except store.ConditionFailed as refused:
        holder = refused.item
        if holder.get(CLAIM_TOKEN, {}).get("S") == token:  # it landed; only its answer was lost
            return Claim(key, State.CLAIMED, token)
        completed = holder.get(STATUS, {}).get("S") == State.COMPLETED
        return Claim(key, State.COMPLETED if completed else State.IN_PROGRESS, holder=holder)
    return Claim(key, State.CLAIMED, token)


def complete(claimed: Claim, record: store.Item | None = None) -> None:
    """Mark the unit COMPLETED for the full TTL, with ``record``'s attributes; report how it ended.

    Never raises: the work is done, and failing the unit now would only make it run again. A
    failed write leaves the lease to end; a copy that took the unit over completes it.
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

    Returns once they have committed: the unit may be acknowledged. Otherwise raises
    InProgressElsewhere (another copy took the unit over, and does the writes), or, with the
    claim released for the retry, store.StoreUnavailable (nothing was committed) or
    effects.WriteRefused (a write's own condition failed: the work failed).
    """
    try:
        effects.commit(writes, _completion(claimed, record), _token(claimed))
    except store.ConditionFailed as refused:
        if not _completed_before(claimed, refused.item):  # none of this copy's writes landed
            raise InProgressElsewhere(claimed.key) from None
    except effects.WriteRefused as error:
        decisions.report("failed", claimed.key, error=repr(error))
        release(claimed)
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

    Only while this claim still holds the record (STILL_HELD): a copy whose lease lapsed must
    not delete the record of the copy that took over. Never raises: the failure being handled
    matters more, and an unreleased claim still ends with its lease.
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
    """Whether ``holder``, the record that refused a STILL_HELD write, is this claim's own
    completion (an earlier try landed, its answer lost), not a copy's that took over; reported."""
    if holder.get(CLAIM_TOKEN, {}).get("S") == claimed.token:
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


def _token(claimed: Claim) -> str:
    if claimed.token is None:
        raise ValueError(f"{claimed.key} was not claimed by this invocation")
    return claimed.token
