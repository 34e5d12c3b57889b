{%- import "common/source.j2" as source with context -%}
{% include [source.own ~ "handler_test.py.j2", source.shared ~ "handler_test.py.j2"] %}