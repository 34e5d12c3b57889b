"""Check template.yaml in two stages, offline: the SAM transform, then cfn-lint.

cfn-lint on its own does not expand the SAM transform, so it misses SAM mistakes such as a
misspelt event type or a queue whose visibility timeout is shorter than the function's
timeout. aws-sam-translator expands the template as CloudFormation would (with a placeholder
code location and no AWS calls), and cfn-lint then checks both the raw and the expanded form.

Usage: python -m tools.validate_template [template.yaml]
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


def expand_sam(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation that the SAM transform makes of ``template``."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator builds ARNs
    sam = copy.deepcopy(template)
    for resource in sam.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = PLACEHOLDER_CODE_URI
    return transform(sam, {}, _NoManagedPolicies())


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
    path = Path(argv[0]) if argv else TEMPLATE
    found = problems(path)
    for line in found:
        print(line)
    print(f"{path.name}: {len(found)} problem(s) (SAM transform + cfn-lint)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
