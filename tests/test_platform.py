"""Each bake passes what a platform team runs before a service ships, all offline.

checkov on template.yaml and on its SAM expansion; cfn-lint with the serverless rules and its
informational checks; `sam validate` and `sam validate --lint` (each lets through something the
other refuses); `sam build` with the default runtime; and the expanded template deployed into
moto's CloudFormation. The SAM CLI and checkov run from their own virtualenvs (`make tools`).
Every tool runs once per bake, in module-scoped fixtures; the tests read what it said.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from moto import mock_aws

from conftest import ONE_PER_FAMILY, SOURCES, TEMPLATE_DIR, baked, pyenv_versions

TOOLS = TEMPLATE_DIR / ".venv" / "tools"
SAM = TOOLS / "sam" / "bin" / "sam"
CHECKOV = TOOLS / "checkov" / "bin" / "checkov"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")  # the project's, with cfn-lint-serverless
REGION = "us-east-1"

# What checkov is told to skip, per source, in template.yaml and again in its expansion (where
# the function's skips sit on the AWS::Lambda::Function, the REST API's on its stage). Each skip
# says why in the template; a new one must be added here too, on purpose.
FUNCTION_SKIPS = {("CKV_AWS_116", "ProcessorFunction"), ("CKV_AWS_117", "ProcessorFunction")}
QUEUE_SKIPS = {
    "sqs": ["Queue", "DeadLetterQueue"],
    "sns": ["DeadLetterQueue", "UndeliveredNotificationQueue"],
    "kinesis": ["OnFailureQueue"],
    "eventbridge": ["DeadLetterQueue", "UndeliveredEventQueue"],
    "apigateway": [],
    "httpapi": [],
    "dynamodb_streams": ["OnFailureQueue"],
    "s3": ["DeadLetterQueue"],
    "sqs_fifo": ["Queue", "DeadLetterQueue"],
    "msk": ["OnFailureQueue"],
    "self_managed_kafka": ["OnFailureQueue"],
    "function_url": [],
    "lambda_async": ["DeadLetterQueue"],
}
OTHER_SKIPS = {
    "apigateway": {("CKV_AWS_120", "Api")},  # expanded: its stage, ApiprodStage
    "s3": {("CKV_AWS_18", "Bucket")},
}

# Resource types moto's CloudFormation does not create (it logs "No Moto CloudFormation support
# for <type>" and goes on), and the one stack it cannot create at all.
MOTO_UNSUPPORTED = {
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
}
MOTO_CANNOT_CREATE = {
    "apigateway": "moto creates no AWS::ApiGateway::RestApi from an OpenAPI Body, as SAM writes it",
    # moto's CreateEventSourceMapping knows only SQS, Kinesis and DynamoDB Streams ARNs.
    "msk": "moto creates no event source mapping for an MSK cluster (Invalid EventSourceArn)",
    "self_managed_kafka": "moto creates no event source mapping without an EventSourceArn",
    "function_url": "moto has no AWS::Lambda::Url, whose FunctionUrl attribute the stack outputs",
}


# moto also warns about each type it skips; the tests collect the same message from its log.
pytestmark = [
    pytest.mark.full,
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
]


def tool(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a platform tool as a user would, with fake credentials and python3.x on PATH."""
    ours = ("AWS_", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env |= {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SAM_CLI_TELEMETRY": "0",
    }
    versions = pyenv_versions()
    if versions and "PYENV_VERSION" not in env:
        env["PYENV_VERSION"] = versions  # else pyenv's python3.12, python3.13 shims refuse
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="module", autouse=True)
def tools_installed() -> None:
    missing = [str(path) for path in (SAM, CHECKOV, CFN_LINT) if not path.is_file()]
    assert not missing, f"missing {missing}: `make tools` installs them"


class Bake(NamedTuple):
    source: str
    path: Path


@pytest.fixture(scope="module", params=SOURCES)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Bake:
    """A project baked for one source, with its expansion beside it as expanded.json."""
    project = baked(cookies_session, event_source=request.param, project_name="Acme Orders")
    expansion = tool(sys.executable, "-m", "tools.validate_template", "--expand", cwd=project)
    assert expansion.returncode == 0, expansion.stderr
    (project / "expanded.json").write_text(expansion.stdout, encoding="utf-8")
    return Bake(request.param, project)


@pytest.fixture(scope="module")
def checkov(project: Bake) -> dict[str, list[dict[str, Any]]]:
    """checkov's findings on template.yaml and expanded.json, in one run."""
    scan = tool(
        CHECKOV,
        *("-f", "template.yaml", "-f", "expanded.json"),
        *("--framework", "cloudformation", "--skip-download", "--output", "json"),
        cwd=project.path,
    )
    assert scan.stdout, scan.stderr
    return json.loads(scan.stdout)["results"]


@pytest.fixture(scope="module")
def cfn_lint(project: Bake) -> dict[str, subprocess.CompletedProcess[str]]:
    """cfn-lint with the serverless rules, on template.yaml (it expands SAM itself) with its
    informational checks too, and on expanded.json without them: there SAM's own ARNs carry a
    literal partition, which I3042 would report."""
    serverless = ("-a", "cfn_lint_serverless.rules")  # after the file: -a takes a list
    return {
        "template.yaml": tool(CFN_LINT, "template.yaml", "-c", "I", *serverless, cwd=project.path),
        "expanded.json": tool(CFN_LINT, "expanded.json", *serverless, cwd=project.path),
    }


@pytest.fixture(scope="module")
def sam(project: Bake) -> dict[str, subprocess.CompletedProcess[str]]:
    return {
        "validate": tool(SAM, "validate", cwd=project.path),
        "validate --lint": tool(SAM, "validate", "--lint", cwd=project.path),
    }


def _skips(source: str) -> set[tuple[str, str]]:
    queues = {("CKV_AWS_27", queue) for queue in QUEUE_SKIPS[source]}
    return FUNCTION_SKIPS | queues | OTHER_SKIPS.get(source, set())


def _by_file(checks: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in checks if c["file_path"].endswith("/" + name)]


def test_checkov_fails_nothing_on_the_template_or_its_expansion(checkov):
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in checkov["failed_checks"]
    ]
    assert failed == []
    for name in ("template.yaml", "expanded.json"):
        assert _by_file(checkov["passed_checks"], name), f"checkov read nothing in {name}"


def test_checkov_skips_only_what_the_template_says_why(checkov, project):
    for name in ("template.yaml", "expanded.json"):
        skipped = _by_file(checkov["skipped_checks"], name)
        found = {(c["check_id"], c["resource"].split(".", 1)[1]) for c in skipped}
        expected = _skips(project.source)
        if (
            name == "expanded.json" and project.source == "apigateway"
        ):  # SAM's stage, for its REST API
            expected = (expected - {("CKV_AWS_120", "Api")}) | {("CKV_AWS_120", "ApiprodStage")}
        assert found == expected, name
        for check in skipped:
            assert len(check["check_result"]["suppress_comment"]) > 40, check["check_id"]


def test_cfn_lint_serverless_rules_and_informational_checks_find_nothing(cfn_lint):
    for name, result in cfn_lint.items():
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), name


def test_sam_validate_and_validate_lint_accept_it(sam):
    for command in ("validate", "validate --lint"):
        result = sam[command]
        assert result.returncode == 0, f"sam {command}:\n{result.stdout}\n{result.stderr}"
        assert "is a valid SAM Template" in result.stdout


@pytest.mark.parametrize("source", ONE_PER_FAMILY)
def test_sam_build_packages_the_handler_with_the_default_runtime(cookies, source):
    """Once per family: what sam build packages, src/, is the same for a family's sources."""
    project = baked(cookies, event_source=source, project_name="Acme Orders")
    result = tool(SAM, "build", cwd=project)
    assert result.returncode == 0, f"sam build:\n{result.stdout}\n{result.stderr}"
    assert (project / ".aws-sam/build/ProcessorFunction/acme_orders/handler.py").is_file()
    built = (project / ".aws-sam/build/template.yaml").read_text()
    assert "Runtime: python3.13" in built


def test_the_tools_are_live_and_each_catches_its_own_kind_of_mistake(bake_one):
    """Break the template four ways: each tool reports its own, so a clean run means clean."""
    template = (bake_one / "template.yaml").read_text()
    broken = (
        template.replace("      Tracing: Active\n", "")  # serverless rules: WS1000
        .replace(
            "    DeletionPolicy: Delete\n    UpdateReplacePolicy: Delete\n    Properties:\n"
            "      BillingMode",
            "    Properties:\n      BillingMode",
        )  # -c I: I3011
        .replace("    Type: SQS\n", "    Type: SQSS\n")  # sam validate, not --lint
    )
    # checkov: the queue's CKV_AWS_27 skip removed
    queue_skip = broken.index("  Queue:\n") + len("  Queue:\n")
    broken = broken[:queue_skip] + broken[queue_skip:].replace(
        "- id: CKV_AWS_27", "- id: CKV_AWS_0", 1
    )
    assert broken.count("SQSS") == 1
    assert "Tracing: Active" not in broken
    (bake_one / "broken.yaml").write_text(broken)

    lint = tool(CFN_LINT, "broken.yaml", "-c", "I", "-a", "cfn_lint_serverless.rules", cwd=bake_one)
    assert "WS1000" in lint.stdout, lint.stdout
    assert "I3011" in lint.stdout, lint.stdout
    scan = tool(CHECKOV, "-f", "broken.yaml", "--skip-download", "-o", "json", cwd=bake_one)
    failed = {c["check_id"] for c in json.loads(scan.stdout)["results"]["failed_checks"]}
    assert "CKV_AWS_27" in failed
    assert tool(SAM, "validate", "-t", "broken.yaml", cwd=bake_one).returncode != 0
    lint_only = tool(SAM, "validate", "--lint", "-t", "broken.yaml", cwd=bake_one)
    assert lint_only.returncode == 0, "sam validate --lint now catches a misspelt event type"


@pytest.fixture
def bake_one(bake: Any) -> Path:
    return bake(event_source="sqs", project_name="Acme Orders")


# ---- the offline deploy: moto's CloudFormation ------------------------------------------------


@pytest.fixture(scope="module")
def deployed(project: Bake) -> dict[str, Any]:
    """The expanded template created as a stack in moto, and what moto then holds."""
    template = json.loads((project.path / "expanded.json").read_text())
    messages: list[str] = []
    handler = _Collect(messages)
    moto_log = logging.getLogger("moto")
    moto_log.addHandler(handler)
    try:
        with _fake_credentials(), mock_aws():
            outcome = _deploy(template)
    finally:
        moto_log.removeHandler(handler)
    outcome["template"] = template
    outcome["unsupported"] = {
        m.rsplit(" ", 1)[1] for m in messages if "CloudFormation support" in m
    }
    return outcome


def _deploy(template: dict[str, Any]) -> dict[str, Any]:
    _put_placeholder_code(template)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    try:
        cloudformation.create_stack(
            StackName="acme-orders",
            # moto keeps a list item that is !Ref AWS::NoValue (CloudFormation drops it), so
            # the conditions are decided first, for the parameters' defaults.
            TemplateBody=json.dumps(_fifo_queues_named(_with_default_conditions(template))),
            Capabilities=["CAPABILITY_IAM"],
        )
    except Exception as error:  # moto's own failure: the test names it
        return {"error": error}
    (stack,) = cloudformation.describe_stacks(StackName="acme-orders")["Stacks"]
    summaries = cloudformation.list_stack_resources(StackName="acme-orders")
    resources = {
        r["LogicalResourceId"]: r
        for r in summaries["StackResourceSummaries"]
        if r["LogicalResourceId"]  # moto lists what it skipped with no id
    }

    def physical(name: str) -> str:
        return resources[name]["PhysicalResourceId"]

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    lambda_ = boto3.client("lambda", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    queues = {
        name: sqs.get_queue_attributes(QueueUrl=physical(name), AttributeNames=["All"])
        for name, r in resources.items()
        if r["ResourceType"] == "AWS::SQS::Queue"
    }
    # What an event source mapping should read, as moto names it.
    if "Queue" in queues:
        event_source = queues["Queue"]["Attributes"]["QueueArn"]
    elif "Stream" in resources:
        kinesis = boto3.client("kinesis", region_name=REGION)
        event_source = kinesis.describe_stream(StreamName=physical("Stream"))["StreamDescription"][
            "StreamARN"
        ]
    elif "SourceTable" in resources:
        source_table = dynamodb.describe_table(TableName=physical("SourceTable"))["Table"]
        event_source = source_table["LatestStreamArn"]
    else:
        event_source = None
    function = physical("ProcessorFunction")
    return {
        "status": stack["StackStatus"],
        "resources": resources,
        "table": dynamodb.describe_table(TableName=physical("DedupTable"))["Table"],
        "function": lambda_.get_function(FunctionName=function)["Configuration"],
        "mappings": lambda_.list_event_source_mappings(FunctionName=function)[
            "EventSourceMappings"
        ],
        "queues": {name: attributes["Attributes"] for name, attributes in queues.items()},
        "event_source": event_source,
    }


@contextlib.contextmanager
def _fake_credentials() -> Iterator[None]:
    fake = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    saved = {name: os.environ.get(name) for name in fake}
    os.environ.update(fake)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _put_placeholder_code(template: dict[str, Any]) -> None:
    """The zip the expansion's placeholder CodeUri names, as a real (tiny) zip in moto's S3."""
    s3 = boto3.client("s3", region_name=REGION)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            code = resource["Properties"]["Code"]
            archive = io.BytesIO()
            with zipfile.ZipFile(archive, "w") as zipped:
                zipped.writestr("acme_orders/handler.py", "def lambda_handler(e, c): pass\n")
            s3.create_bucket(Bucket=code["S3Bucket"])
            s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=archive.getvalue())


def _fifo_queues_named(template: dict[str, Any]) -> dict[str, Any]:
    """The template with a name for each FIFO queue that has none, as CloudFormation gives it.

    CloudFormation names such a queue with the .fifo suffix a FIFO queue's name needs; moto
    names it as a standard queue and then refuses it ("Queue name must end in .fifo").
    """
    named = copy.deepcopy(template)
    for logical_id, resource in named["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue" and properties.get("FifoQueue"):
            properties.setdefault("QueueName", f"acme-orders-{logical_id}.fifo")
    return named


def _with_default_conditions(template: dict[str, Any]) -> dict[str, Any]:
    """The template with each Fn::If decided for the parameters' defaults."""
    parameters = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    no_value = {"Ref": "AWS::NoValue"}

    def holds(condition: Any) -> Any:
        (function, argument), *_ = condition.items()
        if function == "Fn::Not":
            return not holds(argument[0])
        if function == "Fn::Equals":
            return value(argument[0]) == value(argument[1])
        if function == "Condition":
            return holds(template["Conditions"][argument])
        raise AssertionError(f"no offline evaluation for {function}")

    def value(item: Any) -> Any:
        if isinstance(item, dict) and set(item) == {"Ref"} and item["Ref"] in parameters:
            return parameters[item["Ref"]]
        return item

    def decide(item: Any) -> Any:
        if isinstance(item, dict):
            if set(item) == {"Fn::If"}:
                name, if_true, if_false = item["Fn::If"]
                return decide(if_true if holds(template["Conditions"][name]) else if_false)
            decided = {key: decide(v) for key, v in item.items()}
            return {key: v for key, v in decided.items() if v != no_value}
        if isinstance(item, list):
            return [v for v in map(decide, item) if v != no_value]
        return item

    decided = copy.deepcopy(template)
    decided["Resources"] = decide(template["Resources"])
    decided["Outputs"] = decide(template.get("Outputs", {}))
    return decided


def test_the_stack_creates_in_moto_with_every_resource_moto_supports(deployed, project):
    unsupported = deployed["unsupported"]
    if project.source in MOTO_CANNOT_CREATE:
        assert "error" in deployed, f"moto now creates the {project.source} stack: test it here"
        pytest.xfail(f"{MOTO_CANNOT_CREATE[project.source]}: {deployed['error']!r}")
    assert deployed["status"] == "CREATE_COMPLETE"
    assert unsupported <= MOTO_UNSUPPORTED, "moto skipped more than it is known to"
    for name, resource in deployed["template"]["Resources"].items():
        if resource["Type"] not in unsupported:
            assert deployed["resources"][name]["ResourceStatus"] == "CREATE_COMPLETE", name


def test_moto_holds_the_dedup_table_and_the_function_told_its_name(deployed, project):
    if project.source in MOTO_CANNOT_CREATE:
        pytest.xfail(MOTO_CANNOT_CREATE[project.source])
    table = deployed["table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    function = deployed["function"]
    assert function["Environment"]["Variables"]["DEDUP_TABLE_NAME"] == table["TableName"]
    assert function["Handler"] == "acme_orders.handler.lambda_handler"
    assert function["Runtime"] == "python3.13"


def test_moto_holds_the_event_source_mapping_and_the_failure_queues(deployed, project):
    if project.source in MOTO_CANNOT_CREATE:
        pytest.xfail(MOTO_CANNOT_CREATE[project.source])
    resources = deployed["template"]["Resources"]
    queues = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert set(deployed["queues"]) == queues
    if deployed["event_source"] is None:  # invoked by its source, not polled
        assert deployed["mappings"] == []
        return
    (mapping,) = deployed["mappings"]
    assert mapping["EventSourceArn"] == deployed["event_source"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    if project.source in ("sqs", "sqs_fifo"):
        redrive = json.loads(deployed["queues"]["Queue"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == deployed["queues"]["DeadLetterQueue"]["QueueArn"]
    if project.source == "sqs_fifo":  # moto refuses a standard dead-letter queue for a FIFO one
        assert {queue["FifoQueue"] for queue in deployed["queues"].values()} == {"true"}
