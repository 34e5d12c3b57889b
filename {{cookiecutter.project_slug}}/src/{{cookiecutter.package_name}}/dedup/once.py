{%- import "common/source.j2" as source with context -%}
"""Running one unit of work under its claim: the steps every handler takes, in order.

claims.py keeps the record of each unit; this module walks one unit through it. Claim it for
as long as this invocation may run (and no longer than service.LEASE_SECONDS); skip it if it
completed before, hand it back if another invocation holds it; run the work, collecting the
DynamoDB writes it enlists; then complete it, with those writes, or, when the work raised,
{%- if source.http %}
release it so that the retry runs at once.
{%- else %}
release it so that the retry runs at once (at most once: put it in doubt, unless the work
raised NothingDone).
{%- endif %}
{%- if source.http %} responses.py takes the same steps for a request.{% elif source.batch %} Batches (batch.py) take the same steps, overlapped.{% endif %}
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import claims, decisions, effects, store

if TYPE_CHECKING:
    from .keys import LambdaContext


class NothingDone(Exception):
    """Raised by ``process`` when it knows that the unit's side effect did not happen (its
    input failed validation before the call, the connection was refused): the unit is
    released and runs again on its next delivery,
{%- if source.http %} as after any other failure here.{% else %} even at most once.{% endif %}"""
{%- if not source.http %}


class Guarantee:
    """What service.py chose for its units: ``at_most_once`` (AT_MOST_ONCE: a unit whose work
    may have run is never run again by a delivery) and ``lease_seconds`` (LEASE_SECONDS: the
    most time one unit's work takes; None: the invocation's remaining time)."""

    __slots__ = ("at_most_once", "lease_seconds")

    def __init__(self, *, at_most_once: bool = False, lease_seconds: float | None = None) -> None:
        self.at_most_once = at_most_once
        self.lease_seconds = lease_seconds
{%- endif %}


def lease_seconds(context: LambdaContext, most: float | None) -> float:
    """A claim lasts as long as this invocation may, and no longer than ``most`` seconds."""
    remaining = context.get_remaining_time_in_millis() / 1000
    if most is None:
        return remaining
    if not most > 0:
        raise ValueError(f"LEASE_SECONDS in service.py is {most!r}: it must be above 0")
    return min(most, remaining)
{%- if not source.http %}


def run(
    key: str,
    unit: Any,
    context: LambdaContext,
    process: Callable[[Any], object],
    guarantee: Guarantee,
) -> bool:
    """Run ``process(unit)`` unless the unit under ``key`` has already completed (or is in
    doubt); True if it ran now.

    Returns once the unit may be acknowledged (False: it was a duplicate). Raises
    claims.InProgressElsewhere, store.StoreUnavailable, effects.WriteRefused, or whatever
    ``process`` raised, after releasing the claim (at most once: putting it in doubt).
    """
    lease = lease_seconds(context, guarantee.lease_seconds)
    claimed = claims.claim(key, lease, at_most_once=guarantee.at_most_once, unit=unit)
    if not admit(claimed):
        return False
    _, writes = attempt(claimed, lambda: process(unit))
    finish(claimed, writes)
    return True
{%- endif %}
{%- if not source.http %}


def admit(claimed: claims.Claim) -> bool:
    """True when this invocation holds the unit; False for a duplicate of a completed one or
    of one in doubt (acknowledged without running).

    Raises claims.InProgressElsewhere when another invocation holds it. Reports either refusal.
    """
    if claimed.state == claims.State.COMPLETED:
        decisions.report("duplicate_skipped", claimed.key)
        return False
    if claimed.state == claims.State.IN_DOUBT:
        reason = claimed.holder.get(claims.IN_DOUBT_REASON, {}).get("S", "")
        decisions.report("in_doubt", claimed.key, reason=reason)
        return False
    if claimed.state == claims.State.IN_PROGRESS:
        raise held_elsewhere(claimed)
    return True
{%- endif %}


def held_elsewhere(claimed: claims.Claim) -> claims.InProgressElsewhere:
    """Report that another invocation holds the unit; return the error to raise for it."""
    decisions.report("in_progress", claimed.key)
    return claims.InProgressElsewhere(claimed.key)


def attempt(claimed: claims.Claim, work: Callable[[], Any]) -> tuple[Any, list[effects.Write]]:
    """Run the work of a claimed unit; return what it returned and the writes it enlisted.

    When the work raises, the failure is reported, the claim released
{%- if not source.http %} (at most once, unless it
    raised NothingDone: the unit put in doubt){% endif %}, and the error raised.
    """
    try:
        with effects.collecting(claimed.key) as writes:
            result = work()
{%- if source.http %}
    except Exception as error:
        abandon(claimed, "failed", error=repr(error), traceback=traceback.format_exc())
        raise
{%- else %}
    except NothingDone as error:
        abandon(claimed, "failed", error=repr(error), traceback=traceback.format_exc())
        raise
    except Exception as error:
        decisions.report("failed", claimed.key, error=repr(error), traceback=traceback.format_exc())
        claims.fail(claimed, f"raised: {error!r}")
        raise
{%- endif %}
    return result, writes


def finish(
    claimed: claims.Claim, writes: list[effects.Write], record: store.Item | None = None
) -> None:
    """Complete the unit whose work returned: with the writes it enlisted, in one transaction
    (claims.complete_with, which raises unless they committed), or alone (claims.complete)."""
    if writes:
        claims.complete_with(claimed, writes, record)
    else:
        claims.complete(claimed, record)


def abandon(claimed: claims.Claim, decision: str, **details: object) -> None:
    """Report why the claimed unit is not done, and release it so that the retry runs at once."""
    decisions.report(decision, claimed.key, **details)
    claims.release(claimed)
