{%- import "common/source.j2" as source with context -%}
{% include [source.own ~ "handler.py.j2", source.shared ~ "handler.py.j2"] %}