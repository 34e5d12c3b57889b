{%- import "common/source.j2" as source with context -%}
{% include [source.own ~ "service.py.j2", source.shared ~ "service.py.j2"] %}