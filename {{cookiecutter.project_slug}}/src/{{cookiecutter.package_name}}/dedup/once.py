"""Running one unit of work under its claim: the steps every handler takes, in order.

claims.py keeps the record of each unit; this module walks one unit through it. Claim it for
as long as this invocation may run; skip it if it completed before, hand it back if another
invocation holds it; run the work, collecting the DynamoDB writes it enlists; then complete
it, with those writes, or, when the work raised, release it so that the retry runs at once.
Batches (batch.py) take the same steps, overlapped.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import claims, decisions, effects, store

if TYPE_CHECKING:
    from .keys import LambdaContext


def lease_seconds(context: LambdaContext) -> float:
    """A claim lasts as long as this invocation may: its remaining time."""
    return context.get_remaining_time_in_millis() / 1000


def run(key: str, context: LambdaContext, work: Callable[[], object]) -> bool:
    """Run ``work`` unless the unit under ``key`` has already completed; True if it ran now.

    Returns once the unit may be acknowledged (False: it was a duplicate). Raises
    claims.InProgressElsewhere, store.StoreUnavailable, effects.WriteRefused, or whatever
    ``work`` raised, after releasing the claim so that the retry runs at once.
    """
    claimed = claims.claim(key, lease_seconds(context))
    if not admit(claimed):
        return False
    _, writes = attempt(claimed, work)
    finish(claimed, writes)
    return True


def admit(claimed: claims.Claim) -> bool:
    """True when this invocation holds the unit; False for a duplicate of a completed one.

    Raises claims.InProgressElsewhere when another invocation holds it. Reports either refusal.
    """
    if claimed.state == claims.State.COMPLETED:
        decisions.report("duplicate_skipped", claimed.key)
        return False
    if claimed.state == claims.State.IN_PROGRESS:
        raise held_elsewhere(claimed)
    return True


def held_elsewhere(claimed: claims.Claim) -> claims.InProgressElsewhere:
    """Report that another invocation holds the unit; return the error to raise for it."""
    decisions.report("in_progress", claimed.key)
    return claims.InProgressElsewhere(claimed.key)


def attempt(claimed: claims.Claim, work: Callable[[], Any]) -> tuple[Any, list[effects.Write]]:
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
