{%- import "common/source.j2" as source with context -%}
{% include [source.own ~ "events.py.j2", source.shared ~ "events.py.j2"] %}