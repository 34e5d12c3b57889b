{%- import "common/source.j2" as source with context -%}
"""What {{ source.deliverer }} hands the function, and what it makes of the answer.

:func:`event` builds an event shaped like events/event.json that carries one unit per id,
:func:`unit_id` tells which unit a payload given to ``service.process`` is, and
:func:`deliver` invokes the handler as the platform would and says which units the platform
is then done with: those it will not deliver again. Everything else is delivered again.
"""

from __future__ import annotations

{% include [source.own ~ "delivery.py.j2", source.shared ~ "delivery.py.j2"] %}