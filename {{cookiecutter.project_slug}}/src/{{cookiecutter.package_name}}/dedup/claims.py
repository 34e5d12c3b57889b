{%- import "common/source.j2" as source with context -%}
"""Do each unit of work once, although the event source delivers it at least once.

{% filter wordwrap(95, break_long_words=False, break_on_hyphens=False, wrapstring="\n") -%}
{{ source.name }} may deliver the same {{ source.unit }} to this function more than once: minutes or days apart, or at the same moment to two concurrent invocations. This module records every unit in a DynamoDB table under the key ``<operation>#<unit id>`` and keeps three promises:
{%- endfilter %}

* a unit whose work completed is skipped when it comes again, until its record expires;
* a unit that another invocation is still working on is never acknowledged:
  {{ source.held_elsewhere }}
* a unit whose work failed, or whose invocation died, runs again: a failure deletes the
  record at once, a crash leaves a lease that ends when that invocation's time is up
{%- if source.http %}.{% else %} (at
  least once, the default).{% endif %}

A unit's record moves like this::

    (none) --claim--> IN_PROGRESS --complete--> COMPLETED --expires_at passes--> (none)
                        |      ^
                release |      | claim again, once the lease has ended (crash, timeout)
                        v      |
                      (none) --+
{%- if not source.http %}

At most once (service.AT_MOST_ONCE), a unit whose work may have run is never run again by a
delivery. A lease that ended is not claimed again: the first claim that finds it puts the
unit IN_DOUBT, conditional on the dead copy's token and its lapsed lease; work that raised
(anything but NothingDone) puts it IN_DOUBT itself; NothingDone releases it as above::

    IN_PROGRESS --work raised, or a claim finds the lease ended--> IN_DOUBT
    IN_DOUBT --the copy of its token finishes after all--> COMPLETED
    IN_DOUBT --expires_at passes (or an operator settles it)--> (none)

A record IN_DOUBT keeps the token of the copy in doubt, says since when and why, holds the
unit as delivered when it fits, and counts as long as a completed one. No claim takes it
over, in either mode, until it expires: every delivery of it is acknowledged without running.
{%- endif %}

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
{% if not source.http %}
import json
{%- endif %}
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
{%- if not source.http %}
# A completion also lands on a record put in doubt because this claim's lease lapsed: the
# work did finish after all.
STILL_OURS = "#claim_token = :token AND #status IN (:in_progress, :in_doubt)"
# The lease of the copy holding ``:token`` ended, and nobody has acted on it since.
LAPSED_HOLDER = "#claim_token = :token AND #status = :in_progress AND #lease_expires_at < :now"
# The unit is kept in its record only when it leaves room for the rest (an item holds 400 KB).
MAX_UNIT_BYTES = 300_000
{%- endif %}


class State:
    """The {% if source.http %}two{% else %}three{% endif %} statuses a record stores, and CLAIMED: this invocation wrote it. (Plain names,
    not an Enum, and a plain Claim class: this module is imported on every cold start.)"""

    CLAIMED = "CLAIMED"  # this invocation now holds the unit: do the work
    COMPLETED = "COMPLETED"  # done before: skip it
    IN_PROGRESS = "IN_PROGRESS"  # another invocation holds it: do not acknowledge
{%- if not source.http %}
    IN_DOUBT = "IN_DOUBT"  # its work may have run (at most once): acknowledge, never run
{%- endif %}


class Claim:
    """The result of one claim attempt. ``token`` is set only when ``state`` is CLAIMED.
{%- if not source.http %}
    ``at_most_once`` and ``unit`` say what a failure of the unit's work leaves (:func:`fail`).
{%- endif %}"""

    __slots__ = ({% if not source.http %}"at_most_once", {% endif %}"holder", "key", "state", "token"{% if not source.http %}, "unit"{% endif %})

    def __init__(
        self,
        key: str,
        state: str,
        token: str | None = None,
        holder: store.Item | None = None,
{%- if not source.http %}
        *,
        at_most_once: bool = False,
        unit: Any = None,
{%- endif %}
    ) -> None:
        self.key = key
        self.state = state
        self.token = token
        self.holder = holder or {}  # the record a refused claim lost to
{%- if not source.http %}
        self.at_most_once = at_most_once
        self.unit = unit  # the unit as delivered, kept in the record if it goes IN_DOUBT
{%- endif %}


class InProgressElsewhere(Exception):
    """Another invocation holds this unit: do not acknowledge it, so that it comes back."""


{% if source.http -%}
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
{%- else -%}
def claim(key: str, lease_seconds: float, *, at_most_once: bool = False, unit: Any = None) -> Claim:
    """Take the unit with one conditional put, or say who has it (``unit``: as delivered).

    The put wins when there is no record, when it has expired, or, at least once, when it is
    IN_PROGRESS and its lease has ended (the holder crashed or timed out). At most once, that
    lease is never taken over: this claim puts the unit IN_DOUBT instead (its work may have
    run) and says so. Raises store.StoreUnavailable.
    """
    token = uuid.uuid4().hex
    names = {"#key": KEY, "#expires_at": EXPIRES_AT}
    condition = f"{NO_RECORD} OR {RECORD_EXPIRED}"
    now = time.time()
    values = {":now": {"N": f"{now:.3f}"}}
    if not at_most_once:
        condition += f" OR {LEASE_LAPSED}"
        names.update({"#status": STATUS, "#lease_expires_at": LEASE_EXPIRES_AT})
        values[":in_progress"] = {"S": State.IN_PROGRESS}
    try:
        item = {
            KEY: {"S": key},
            STATUS: {"S": State.IN_PROGRESS},
            CLAIM_TOKEN: {"S": token},
            LEASE_EXPIRES_AT: {"N": f"{now + lease_seconds:.3f}"},
            EXPIRES_AT: store.expiry(now),
        }
        store.send(
            "put_item",
            Item=item,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except store.StoreUnavailable as error:
        decisions.report("store_unavailable", key, error=str(error))
        raise
    except store.ConditionFailed as refused:
        holder = refused.item
        if holder.get(CLAIM_TOKEN, {}).get("S") == token:  # it landed; only its answer was lost
            return Claim(key, State.CLAIMED, token, at_most_once=at_most_once, unit=unit)
        if at_most_once and _lapsed(holder, now):
            holder = _doubt_lapsed(key, holder, unit)
        return Claim(key, _status(holder), holder=holder)
    return Claim(key, State.CLAIMED, token, at_most_once=at_most_once, unit=unit)


def _status(holder: store.Item) -> str:
    """What a refused claim found: COMPLETED, IN_DOUBT, else IN_PROGRESS (held, or just gone)."""
    status = holder.get(STATUS, {}).get("S")
    return status if status in (State.COMPLETED, State.IN_DOUBT) else State.IN_PROGRESS


def _lapsed(holder: store.Item, now: float) -> bool:
    """Whether ``holder`` is an IN_PROGRESS claim whose lease ended before ``now``."""
    lease = holder.get(LEASE_EXPIRES_AT, {}).get("N")
    in_progress = holder.get(STATUS, {}).get("S") == State.IN_PROGRESS
    return in_progress and lease is not None and float(lease) < now


def _doubt_lapsed(key: str, holder: store.Item, unit: Any) -> store.Item:
    """Put the unit of a lapsed lease IN_DOUBT (its copy died or timed out, perhaps after the
    work); return the record as it now is. Conditional on that copy's token and its lease
    still lapsed, so that of two deliveries one acts, and a copy that completed meanwhile
    stays completed. Raises store.StoreUnavailable (reported): nothing is acknowledged."""
    request = _in_doubt(key, holder[CLAIM_TOKEN]["S"], "lease lapsed", unit, lapsed=True)
    try:
        return store.send("update_item", **request, ReturnValues="ALL_NEW")["Attributes"]
    except store.ConditionFailed as refused:  # another delivery acted first, or the copy did
        return refused.item
    except store.StoreUnavailable as error:
        decisions.report("store_unavailable", key, error=str(error))
        raise
{%- endif %}


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
    claim released for the retry{% if not source.http %} (at most once: the unit put in doubt, :func:`fail`){% endif %},
    store.StoreUnavailable (nothing was committed) or effects.WriteRefused (a write's own
    condition failed: the work failed).
    """
    try:
        effects.commit(writes, _completion(claimed, record), _token(claimed))
    except store.ConditionFailed as refused:
        if not _completed_before(claimed, refused.item):  # none of this copy's writes landed
            raise InProgressElsewhere(claimed.key) from None
    except effects.WriteRefused as error:
        decisions.report("failed", claimed.key, error=repr(error))
{%- if source.http %}
        release(claimed)
{%- else %}
        fail(claimed, f"write refused: {error}")
{%- endif %}
        raise
    except store.StoreUnavailable as error:
{%- if source.http %}
        if _release(claimed):  # the transaction had committed; only its answer was lost
{%- else %}
        if _fail(claimed, f"completion not recorded: {error}"):  # it had committed after all
{%- endif %}
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


{%- if not source.http %}


def fail(claimed: Claim, reason: str) -> None:
    """After work that raised, or a completion that did not land: at least once, release the
    claim (:func:`release`); at most once, put the unit IN_DOUBT, since its work may have
    run, saying ``reason``. Only while this claim still holds the record; never raises (an
    unwritten IN_DOUBT is written by the first delivery after the lease ends)."""
    _fail(claimed, reason)


def _fail(claimed: Claim, reason: str) -> bool:
    """:func:`fail`; True when, instead, it found this claim's own completion."""
    if not claimed.at_most_once:
        return _release(claimed)
    request = _in_doubt(claimed.key, _token(claimed), reason, claimed.unit, lapsed=False)
    try:
        store.send("update_item", **request)
    except store.ConditionFailed as refused:
        return bool(refused.item) and _completed_before(claimed, refused.item)
    except store.StoreUnavailable as error:
        decisions.report("release_failed", claimed.key, error=str(error))
    return False


def _in_doubt(key: str, token: str, reason: str, unit: Any, *, lapsed: bool) -> dict[str, Any]:
    """The update that puts the unit IN_DOUBT for the full TTL, as request parameters:
    conditional on ``token``'s claim still holding it, with its lease lapsed if ``lapsed``."""
    now = time.time()
    names = {
        "#status": STATUS,
        "#claim_token": CLAIM_TOKEN,
        "#since": IN_DOUBT_SINCE,
        "#reason": IN_DOUBT_REASON,
        "#expires_at": EXPIRES_AT,
    }
    values = {
        ":in_doubt": {"S": State.IN_DOUBT},
        ":in_progress": {"S": State.IN_PROGRESS},
        ":token": {"S": token},
        ":since": {"N": str(int(now))},
        ":reason": {"S": reason},
        ":until": store.expiry(now),
    }
    assignments = "#status = :in_doubt, #since = :since, #reason = :reason, #expires_at = :until"
    kept = _unit_json(unit)
    if kept is not None:
        names["#unit"], values[":unit"] = UNIT, {"S": kept}
        assignments += ", #unit = :unit"
    if lapsed:
        names["#lease_expires_at"], values[":now"] = LEASE_EXPIRES_AT, {"N": f"{now:.3f}"}
    return {
        "Key": {KEY: {"S": key}},
        "UpdateExpression": f"SET {assignments}",
        "ConditionExpression": LAPSED_HOLDER if lapsed else STILL_HELD,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _unit_json(unit: Any) -> str | None:
    """``unit`` as JSON, for an operator to read and run again; None when it is not JSON or
    would not leave room in the record for the rest."""
    try:
        text = json.dumps(unit, separators=(",", ":"))
    except TypeError:  # a value JSON has no type for
        return None
    except ValueError:  # a value that holds itself
        return None
    return text if len(text) <= MAX_UNIT_BYTES else None  # ASCII: one byte per character
{%- endif %}


def _completed_before(claimed: Claim, holder: store.Item) -> bool:
    """Whether ``holder``, the record that refused a STILL_HELD write, is this claim's own
    completion (an earlier try landed, its answer lost), not a copy's that took over; reported.
{%- if not source.http %}
    A record IN_DOUBT under this claim's token is neither: it stays in doubt, unreported
    (the delivery that put it there reported it)."""
    if holder.get(CLAIM_TOKEN, {}).get("S") == claimed.token:
        if holder.get(STATUS, {}).get("S") == State.IN_DOUBT:
            return False
        decisions.report("processed", claimed.key)
        return True
{%- else %}"""
    if holder.get(CLAIM_TOKEN, {}).get("S") == claimed.token:
        decisions.report("processed", claimed.key)
        return True
{%- endif %}
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
{%- if not source.http %}
    # A late finisher completes a record put in doubt because of it, and clears the doubt.
    values[":in_doubt"] = {"S": State.IN_DOUBT}
    names.update({"#since": IN_DOUBT_SINCE, "#reason": IN_DOUBT_REASON, "#unit": UNIT})
    removed = "#lease, #since, #reason, #unit"
{%- endif %}
    assignments = ["#status = :completed"]
    # The record may carry its own expiry (a response kept in chunks expires with them).
    kept = {EXPIRES_AT: store.expiry(time.time()), **(record or {})}
    for index, (name, value) in enumerate(kept.items()):
        names[f"#set{index}"], values[f":set{index}"] = name, value
        assignments.append(f"#set{index} = :set{index}")
    return {
        "Key": {KEY: {"S": claimed.key}},
{%- if source.http %}
        "UpdateExpression": f"SET {', '.join(assignments)} REMOVE #lease",
        "ConditionExpression": STILL_HELD,
{%- else %}
        "UpdateExpression": f"SET {', '.join(assignments)} REMOVE {removed}",
        "ConditionExpression": STILL_OURS,
{%- endif %}
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _token(claimed: Claim) -> str:
    if claimed.token is None:
        raise ValueError(f"{claimed.key} was not claimed by this invocation")
    return claimed.token
