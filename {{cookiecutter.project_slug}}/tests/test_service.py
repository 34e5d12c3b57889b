{%- import "common/source.j2" as source with context -%}
"""Tests of the example business logic in service.py: yours to rewrite along with it.

Every other test stands in for ``service.process``, so they keep passing whatever you write
there; these run the real one, through the handler, against moto. ``cruft update`` leaves
this file alone, like service.py.
"""

from __future__ import annotations

{% include [source.own ~ "service_test.py.j2", source.shared ~ "service_test.py.j2"] %}