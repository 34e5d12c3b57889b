"""Every offered source has the pieces a source must have (README.md: "Adding a source").

A source is one folder, templates/sources/<source>/, plus its line in cookiecutter.json. What
it does not hold itself it takes from its family's folder, templates/families/<family>/. These
checks fail naming the piece that is missing, before any bake would fail on it obscurely.
"""

from __future__ import annotations

import re

import pytest

from conftest import CAPABILITIES, COOKIECUTTER_JSON, SOURCES, TEMPLATE_DIR

TEMPLATES = TEMPLATE_DIR / "templates"
# In the source's own folder: what only it can say.
OWN = [
    "facts.j2",
    "sam.yaml.j2",
    "event.json.j2",
    "template_test.py.j2",
    "readme_source.md.j2",
    "readme_try.md.j2",
]
OWN_IF_HTTP = ["readme_auth.md.j2"]
# In its own folder, or else its family's: code that sources of one family share.
OWN_OR_FAMILY = [
    "handler.py.j2",
    "events.py.j2",
    "handler_test.py.j2",
    "service.py.j2",
    "service_test.py.j2",
    "delivery.py.j2",
    "bad_input.py.j2",
    "readme_bad_input.md.j2",
]
FACTS = [
    "name",
    "trigger",
    "unit",
    "unit_id",
    "outputs",
    "process_signature",
    "retry_by",
    "deliverer",
]
FACTS_IF_NOT_HTTP = ["business_id", "hands_back"]
SAM_NAMES = [
    "ttl_seconds",
    "ttl_reason",
    "function_dlq_reason",
    "failure_queues",
    "kms_also",
    "function_lint_ignores",
    "function_events",
    "resources",
    "outputs",
]
CAPABILITY_KEYS = {"family", "batch", "ordered", "parallel", "http"}


def defined_names(path) -> set[str]:
    """The names a Jinja module defines at its top level: {% set x = ... %}, {% macro x() %}."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"\{%-?\s*(?:set|macro)\s+(\w+)", text))


def test_the_capability_table_names_exactly_the_offered_sources():
    assert set(CAPABILITIES) == set(SOURCES), "cookiecutter.json: _sources and event_source differ"
    for source, capabilities in CAPABILITIES.items():
        assert set(capabilities) == CAPABILITY_KEYS, f"_sources.{source}: {sorted(capabilities)}"


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_has_its_folder_and_every_piece(source):
    own, family = (
        TEMPLATES / "sources" / source,
        TEMPLATES / "families" / CAPABILITIES[source]["family"],
    )
    http = CAPABILITIES[source]["http"]
    missing = [
        f"templates/sources/{source}/{name}"
        for name in OWN + OWN_IF_HTTP * http
        if not (own / name).is_file()
    ]
    missing += [
        f"templates/sources/{source}/{name} (or templates/families/{family.name}/{name})"
        for name in OWN_OR_FAMILY
        if not (own / name).is_file() and not (family / name).is_file()
    ]
    assert not missing, "missing: " + ", ".join(missing)

    facts = defined_names(own / "facts.j2")
    lacking = [name for name in FACTS + FACTS_IF_NOT_HTTP * (not http) if name not in facts]
    assert not lacking, f"templates/sources/{source}/facts.j2 does not set {', '.join(lacking)}"
    sam = defined_names(own / "sam.yaml.j2")
    lacking = [name for name in SAM_NAMES if name not in sam]
    assert not lacking, (
        f"templates/sources/{source}/sam.yaml.j2 does not define {', '.join(lacking)}"
    )

    prompts = COOKIECUTTER_JSON["__prompts__"]["event_source"]
    assert source in prompts, (
        f"cookiecutter.json: __prompts__.event_source has no label for {source}"
    )


def test_no_template_outside_a_source_folder_is_named_for_a_source():
    named = [
        path.relative_to(TEMPLATES).as_posix()
        for path in TEMPLATES.rglob("*")
        if path.is_file()
        and "sources" not in path.relative_to(TEMPLATES).parts[:1]
        and any(source in path.name or source in path.parent.name for source in SOURCES)
    ]
    assert named == []


def test_no_template_is_a_bare_include():
    bare = [
        path.relative_to(TEMPLATE_DIR).as_posix()
        for path in TEMPLATE_DIR.glob("**/*.j2")
        if re.fullmatch(r"\s*\{%-?\s*include [^%]*%\}\s*", path.read_text(encoding="utf-8"))
    ]
    assert bare == []
