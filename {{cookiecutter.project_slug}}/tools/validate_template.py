"""Check template.yaml in two stages, offline: the SAM transform, then cfn-lint.

cfn-lint on its own does not expand the SAM transform, so it misses SAM mistakes such as a
misspelt event type or a queue whose visibility timeout is shorter than the function's
timeout. aws-sam-translator expands the template as CloudFormation would (with a placeholder
code location and no AWS calls), and cfn-lint then checks both the raw and the expanded form.

Scanners that read CloudFormation (checkov, say) can be pointed at the expanded form too:
``python -m tools.validate_template --expand > expanded.json``. SAM keeps a resource's
Metadata only on the main resource it makes (the function, the REST API), not on the others
(the API's stage, the function's role), so the expansion copies the scanners' settings (the
``checkov`` and ``cfn-lint`` Metadata, which say why a check is skipped there) from each SAM
resource to the resources made from it: a skip written once covers both forms.

Usage: python -m tools.validate_template [template.yaml]
       python -m tools.validate_template --expand [template.yaml]   (prints the expansion)
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import lint
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

from tools.local_aws import TEMPLATE, load_template

PLACEHOLDER_CODE_URI = "s3://placeholder-bucket/code.zip"


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only to resolve policy names."""

    def load(self) -> dict[str, str]:
        return {}


SCANNER_METADATA = ("checkov", "cfn-lint")


def expand_sam(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation that the SAM transform makes of ``template``."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator builds ARNs
    sam = copy.deepcopy(template)
    for resource in sam.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = PLACEHOLDER_CODE_URI
    expanded = transform(sam, {}, _NoManagedPolicies())
    _copy_scanner_metadata(template.get("Resources", {}), expanded["Resources"])
    return expanded


def _copy_scanner_metadata(sam: dict[str, Any], expanded: dict[str, Any]) -> None:
    """Give each resource SAM made the scanner settings of the SAM resource it came from.

    SAM names what it makes after the resource it makes it from (``Api`` gives ``ApiprodStage``),
    so a new logical id belongs to the longest SAM resource id it starts with.
    """
    owners = sorted(
        (name for name, r in sam.items() if str(r.get("Type", "")).startswith("AWS::Serverless::")),
        key=len,
        reverse=True,
    )
    for name, resource in expanded.items():
        if name in sam:
            continue
        owner = next((o for o in owners if name.startswith(o)), None)
        if owner is None:
            continue
        metadata = sam[owner].get("Metadata") or {}
        settings = {key: metadata[key] for key in SCANNER_METADATA if key in metadata}
        if settings:
            resource["Metadata"] = {**settings, **resource.get("Metadata", {})}


def problems(path: Path) -> list[str]:
    """Everything wrong with the template at ``path``, one line each; empty when it is fine."""
    found = [f"raw: {match}" for match in lint(path.read_text(encoding="utf-8"))]
    try:
        expanded = expand_sam(load_template(path))
    except InvalidDocumentException as error:
        return [*found, *(f"sam transform: {cause.message}" for cause in error.causes)]
    found += [f"expanded: {match}" for match in lint(json.dumps(expanded))]
    return found


def main(argv: list[str]) -> int:
    expand = "--expand" in argv
    paths = [arg for arg in argv if arg != "--expand"]
    path = Path(paths[0]) if paths else TEMPLATE
    if expand:
        print(json.dumps(expand_sam(load_template(path)), indent=2))
        return 0
    found = problems(path)
    for line in found:
        print(line)
    print(f"{path.name}: {len(found)} problem(s) (SAM transform + cfn-lint)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
