{%- import "common/source.j2" as source with context -%}
"""The dedup machinery: each unit of work done once, although the source delivers it again.

{% filter wordwrap(95, break_long_words=False, break_on_hyphens=False, wrapstring="\n") -%}
{{ source.name }} may deliver the same {{ source.unit }} to this function more than once; this package sees that its work runs once. It is the template's, not yours: ``cruft update`` rewrites it, and ``tests/dedup/`` is its proof. Read it to decide whether to trust it, and change what it does through service.py's optional names and template.yaml's parameters (README.md lists them), not by editing it. Nothing here imports service.py: the handler hands in ``process`` and the optional names.
{%- endfilter %}

What your code uses, and all it needs (``from .dedup import effects``, say):

- ``effects``: DynamoDB writes that ``process`` enlists, committed in one transaction with
  the unit's completion (exactly once), and ``effects.idempotency_token()`` for other
  systems' idempotency keys.
{%- if source.http %}
- ``events``: the key a request goes under, and the answer to it.
{%- elif source.batch %}
- ``events``: the units of an event, the id of each, and the handler's answer.
- ``batch``: a batch's units, each run once (``batch.process_all``).
{%- else %}
- ``events``: the key an event goes under.
- ``once``: one unit run once (``once.run``).
{%- endif %}
{%- if not source.http %}
- ``NothingDone``: what ``process`` raises when it knows that its side effect did not happen,
  so that the unit runs again even with ``AT_MOST_ONCE = True``.
- ``Guarantee``: what the handler hands on from service.py's ``AT_MOST_ONCE`` and
  ``LEASE_SECONDS``.
{%- else %}
- ``NothingDone``: what ``process`` may raise when it knows that its side effect did not
  happen; here, as every failure, it answers 500 and the client's retry runs.
{%- endif %}
- ``LambdaContext``: the part of Lambda's context object the handler needs (for type hints).

{% filter wordwrap(95, break_long_words=False, break_on_hyphens=False, wrapstring="\n") -%}
The rest, one job each: ``claims`` (the record of each unit: claim, complete, release),
{%- if source.http %} ``responses`` (the first response, kept and replayed), ``idempotency_key`` (the header, read as the IETF draft says),{% endif %}
{%- if source.http or source.batch %} ``once`` (one unit's steps under its claim),{% endif %} ``keys`` (the key a unit goes under), ``store`` (the table, its settings and errors) and ``decisions`` (one log line and metric per decision).
{%- endfilter %}
"""

{% if source.batch -%}
from . import batch, effects, events
{%- elif source.http -%}
from . import effects, events
{%- else -%}
from . import effects, events, once
{%- endif %}
from .keys import LambdaContext
{%- if source.http %}
from .once import NothingDone
{%- else %}
from .once import Guarantee, NothingDone
{%- endif %}

{% if source.batch -%}
__all__ = ["Guarantee", "LambdaContext", "NothingDone", "batch", "effects", "events"]
{%- elif source.http -%}
__all__ = ["LambdaContext", "NothingDone", "effects", "events"]
{%- else -%}
__all__ = ["Guarantee", "LambdaContext", "NothingDone", "effects", "events", "once"]
{%- endif %}
