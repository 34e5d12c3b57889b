"""Each baked project passes its own checks, under every Python it offers, and after its
owner's first edits.

The project's Makefile targets run in a subprocess, as its user would run them: the README's
commands with this interpreter used as it is (USE_PYTHON: it has requirements-dev.txt), the
tests again under every other offered runtime installed here, and, on a bake of each source
family, the edits a team makes first: its own business logic, a dependency, another TTL,
another interpreter (that one makes the project's .venv from PyPI, as a new user's does).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    ARCHITECTURES,
    ONE_PER_FAMILY,
    RUNTIMES,
    SOURCES,
    TEMPLATE_DIR,
    baked,
    cookiecutter_cli,
    installed_runtimes,
    run,
)

pytestmark = pytest.mark.full  # the full tier only (make test): see README.md

USE_PYTHON = f"USE_PYTHON={sys.executable}"
THIS_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
# One source of each kind: record batch, ordered stream, asynchronous event, HTTP request.
OWNER_KINDS = ["sqs", "kinesis", "sns", "apigateway"]
# README commands that need AWS, Docker, or an hour: the rest must pass here, offline.
# The runbook's make records and make redrive work on a deployed stack: tests/dedup/test_redrive.py
# (and test_records.py) run them against moto instead.
ONLINE_OR_LONG = re.compile(r"^make (build|deploy|soak|records|redrive)\b|PYTHON=")


def make(project: Path, *args: str, expect_failure: bool = False) -> str:
    result = run(["make", *args], cwd=project, timeout=900)
    command = "make " + " ".join(args)
    if expect_failure:
        assert result.returncode != 0, f"{command} passed:\n{result.stdout[-3000:]}"
    else:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def readme_commands(project: Path) -> list[str]:
    """The shell commands of the README's bash blocks, one per line, comments dropped."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    lines = (line.split("  #")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module", params=SOURCES)
def project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    return baked(cookies_session, event_source=request.param, project_name="Acme Orders")


def test_the_readmes_offline_commands_pass(project):
    commands = [command for command in readme_commands(project) if command.startswith("make ")]
    offline = [command for command in commands if not ONLINE_OR_LONG.search(command)]
    assert {"make test", "make lint", "make demo", "make help"} <= set(offline)

    for command in offline:
        output = make(project, *shlex.split(command)[1:], USE_PYTHON)
        if command.startswith("make test"):
            assert " passed" in output
            assert " failed" not in output
        if command == "make lint":
            assert "All checks passed!" in output
            assert "template.yaml: 0 problem(s)" in output
        if command.startswith("make demo"):
            event = json.loads((project / "events" / "event.json").read_text())
            if isinstance(event.get("records"), dict):  # Kafka: records by partition
                units = sum(len(records) for records in event["records"].values())
            else:
                units = len(event.get("Records", [event]))
            ran = f"{units} unit(s) delivered 3 times each; the work ran {units} time(s)."
            assert ran in output
        if command == "make demo ARGS=--verbose":
            assert '"_aws": {"Timestamp"' in output  # the log lines, metrics and all
        if command == "make help":
            assert all(f"make {target}" in output for target in ("test", "lint", "demo", "deploy"))


@pytest.fixture(scope="module", params=ONE_PER_FAMILY)
def family_project(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    """One bake per source family: under another Python, a family's sources run the same code."""
    return baked(cookies_session, event_source=request.param, project_name="Acme Orders")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_its_tests_pass_under_every_offered_python(family_project, runtime_venv, runtime):
    if runtime == THIS_RUNTIME:
        pytest.skip(f"{runtime} is this interpreter's: the README's `make test` ran under it")
    if runtime not in installed_runtimes():
        pytest.skip(f"{runtime} is not installed on this machine")
    if runtime not in other_runtimes()[: len(OWNER_KINDS)]:
        pytest.skip(f"{runtime}: no family's owner chose it, so no .venv of it was made")

    output = make(family_project, "test", f"USE_PYTHON={runtime_venv(runtime)}")

    assert f"Python {runtime.removeprefix('python')}" in output
    assert " passed" in output
    assert " failed" not in output


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_runtime_and_architecture_lints_clean(cookies, runtime, architecture):
    project = baked(cookies, runtime=runtime, architecture=architecture)
    make(project, "lint", USE_PYTHON)


def test_an_awkward_long_name_lints_and_tests_clean(cookies):
    project = baked(cookies, project_name="Ça Marche: Über-Long Order Fulfilment API")
    assert project.name == "ca-marche-uber-long-order-fulfilment-api"
    make(project, "lint", USE_PYTHON)
    make(project, "test", USE_PYTHON, "ARGS=tests/dedup/test_events.py tests/test_service.py")


# The owner's first edits, on a bake of each source family.

# A service.py of one's own: it defines process and nothing else, and prints a receipt.
OWN_SERVICE = {
    "sqs": ("record", 'json.loads(record["body"])', "None"),
    "kinesis": ("record", 'json.loads(base64.b64decode(record["kinesis"]["data"]))', "None"),
    "sns": ("record", 'json.loads(record["Sns"]["Message"])', "None"),
    "apigateway": (
        "event",
        'json.loads(event["body"])',
        '{"statusCode": 201, "headers": {}, "body": json.dumps(order)}',
    ),
}
OWN_UNIT = {  # what process receives, for one's own test of it
    "sqs": {"messageId": "m-1", "body": '{"order_id": "ord-1"}'},
    "kinesis": {"kinesis": {"data": "eyJvcmRlcl9pZCI6ICJvcmQtMSJ9"}},  # {"order_id": "ord-1"}
    "sns": {"Sns": {"MessageId": "n-1", "Message": '{"order_id": "ord-1"}'}},
    "apigateway": {"body": '{"order_id": "ord-1"}'},
}
OWN_MODULE = '''
    """Our business logic: charging orders."""

    from __future__ import annotations

    import base64
    import json
    from typing import Any


    def process({unit}: dict[str, Any]) -> Any:
        """Charge the order, and print its receipt."""
        order = {order}
        print(f"charged {{order['order_id']}}")
        return {answer}
    '''
OWN_TEST = '''
    """Our own test of our business logic."""

    from acme_orders import service


    def test_an_order_is_charged(capsys):
        service.process({unit})
        assert "charged ord-1" in capsys.readouterr().out
    '''
RECEIPT = (
    "    print(tabulate.tabulate([[order['order_id'], 'charged']], headers=['order', 'status']))\n"
)
RECEIPT_TEST = """

    def test_a_receipt_lists_the_order(capsys):
        service.process({unit})
        assert "status" in capsys.readouterr().out
    """


def write_own_business_logic(project: Path, source: str, *, with_tabulate: bool = False) -> None:
    """Replace service.py with a module of one's own that defines only ``process``, and its
    test with one's own; ``with_tabulate``: it also uses a package from PyPI that the project
    lacks."""
    unit, order, answer = OWN_SERVICE[source]
    module = textwrap.dedent(OWN_MODULE).format(unit=unit, order=order, answer=answer).lstrip()
    if "base64." not in order:
        module = module.replace("import base64\n", "")
    test = textwrap.dedent(OWN_TEST).format(unit=repr(OWN_UNIT[source])).lstrip()
    if with_tabulate:
        module = module.replace(
            "from typing import Any\n", "from typing import Any\n\nimport tabulate\n"
        )
        module = module.replace("    return ", RECEIPT + "    return ")
        test += textwrap.dedent(RECEIPT_TEST).format(unit=repr(OWN_UNIT[source]))
    (project / "src" / "acme_orders" / "service.py").write_text(module)
    (project / "tests" / "test_service.py").write_text(test)
    formatted = run([sys.executable, "-m", "ruff", "format", "src", "tests"], cwd=project)
    assert formatted.returncode == 0, formatted.stderr  # as one's editor would


# The example's business table, as template.yaml has it: the resource, the function's
# variable, the policy statement for it, and the stack output.
EXAMPLE_TABLE_PARTS = [
    re.compile(r"\n  # The example business table.*?\n  OrdersTable:\n.*?\n(?=\n  \w)", re.DOTALL),
    re.compile(r"\n +ORDERS_TABLE_NAME: !Ref OrdersTable"),
    re.compile(
        r"\n +# The writes service\.py enlists.*?Resource: !GetAtt OrdersTable\.Arn", re.DOTALL
    ),
    re.compile(r"\n  OrdersTableName:\n.*?Value: !Ref OrdersTable", re.DOTALL),
]


def remove_example_table(project: Path) -> None:
    """Delete the example's business table and everything of template.yaml that names it."""
    template = project / "template.yaml"
    text = template.read_text()
    for part in EXAMPLE_TABLE_PARTS:
        text, count = part.subn("", text)
        assert count == 1, part.pattern
    assert "OrdersTable" not in text, "template.yaml still names the example table"
    template.write_text(text)


def rename_example_table(project: Path) -> None:
    """Call the example's business table PaymentsTable, everywhere the project names it."""
    for path in [project / "template.yaml", *project.glob("src/acme_orders/*.py")]:
        text = path.read_text()
        renamed = text.replace("OrdersTable", "PaymentsTable").replace(
            "ORDERS_TABLE", "PAYMENTS_TABLE"
        )
        path.write_text(renamed)
    assert "PAYMENTS_TABLE_NAME: !Ref PaymentsTable" in (project / "template.yaml").read_text()


TTL_DEFAULT = re.compile(r"(DedupTtlSeconds:\n\s+Type: Number\n\s+Default: )(\d+)")


def set_ttl_default(project: Path, seconds: int) -> None:
    """Change the DedupTtlSeconds default, where the README's Settings table points."""
    template = project / "template.yaml"
    changed, count = TTL_DEFAULT.subn(rf"\g<1>{seconds}", template.read_text())
    assert count == 1
    template.write_text(changed)


def ttl_default(project: Path) -> int:
    found = TTL_DEFAULT.search((project / "template.yaml").read_text())
    assert found
    return int(found.group(2))


@pytest.mark.parametrize("source", OWNER_KINDS)
def test_its_own_service_module_without_the_example_table_and_a_longer_ttl_break_nothing(
    cookies, source
):
    project = baked(cookies, event_source=source, project_name="Acme Orders")
    write_own_business_logic(project, source)
    remove_example_table(project)
    set_ttl_default(project, ttl_default(project) + 86400)

    output = make(project, "test", USE_PYTHON)
    make(project, "lint", USE_PYTHON)

    assert " failed" not in output
    assert "test_an_order_is_charged PASSED" in make(
        project, "test", USE_PYTHON, "ARGS=-v tests/test_service.py"
    )


@pytest.mark.parametrize("source", OWNER_KINDS)
def test_renaming_the_example_table_breaks_nothing(cookies, source):
    project = baked(cookies, event_source=source, project_name="Acme Orders")
    rename_example_table(project)

    output = make(project, "test", USE_PYTHON)
    make(project, "lint", USE_PYTHON)

    assert " failed" not in output
    assert " skipped" not in output  # the example's own tests found the renamed table


@pytest.mark.parametrize("source", OWNER_KINDS)
def test_a_ttl_below_the_redelivery_window_fails_one_test_that_says_why(cookies, source):
    project = baked(cookies, event_source=source, project_name="Acme Orders")
    set_ttl_default(project, 3599 if source == "apigateway" else 3600)

    output = make(
        project, "test", USE_PYTHON, "ARGS=tests/dedup/test_template.py", expect_failure=True
    )

    assert "1 failed" in output
    (failure,) = re.findall(r"^FAILED (\S+)", output, re.MULTILINE)
    assert "ttl" in failure.lower()
    assert "duplicates" in output  # the message says what a short TTL does


def other_runtimes() -> list[str]:
    return [runtime for runtime in installed_runtimes() if runtime != THIS_RUNTIME]


def chosen_runtime(source: str) -> str:
    """The interpreter a family's owner chooses: the other installed runtimes, in turn."""
    return other_runtimes()[OWNER_KINDS.index(source) % len(other_runtimes())]


@pytest.fixture(scope="session")
def own_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``own_project(source)``: a bake with business logic of its own that needs a package
    from PyPI, added where README.md says (src/requirements.txt), and the output of
    `make test PYTHON=<chosen runtime>`, which makes .venv from that interpreter and installs
    both files' requirements. Made once per source for all test workers (a .venv takes a
    minute), in a folder they share, under a lock."""
    shared = tmp_path_factory.getbasetemp().parent / "own-projects"
    shared.mkdir(exist_ok=True)

    def made(source: str) -> tuple[Path, str]:
        folder, runtime = shared / source, chosen_runtime(source)
        with (shared / f"{source}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            output_file = folder / "make-test.out"
            if not output_file.is_file():
                result = cookiecutter_cli(
                    str(TEMPLATE_DIR),
                    "--no-input",
                    f"event_source={source}",
                    "project_name=Acme Orders",
                    "-o",
                    str(folder),
                    cwd=shared,
                )
                assert result.returncode == 0, result.stderr
                project = folder / "acme-orders"
                write_own_business_logic(project, source, with_tabulate=True)
                with (project / "src" / "requirements.txt").open("a") as requirements:
                    requirements.write("tabulate==0.9.0\n")
                tests = "ARGS=tests/test_service.py tests/dedup/test_events.py"
                output_file.write_text(make(project, "test", f"PYTHON={runtime}", tests))
        return folder / "acme-orders", output_file.read_text()

    return made


@pytest.fixture(scope="session")
def runtime_venv(own_project: Any) -> Any:
    """``runtime_venv(runtime)``: the interpreter of a .venv that a project's own Makefile
    made from ``runtime``, in the first family whose owner chose it."""

    def python(runtime: str) -> str:
        (source,) = [source for source in OWNER_KINDS if chosen_runtime(source) == runtime][:1]
        project, _ = own_project(source)
        return str(project / ".venv" / "bin" / "python")

    return python


@pytest.mark.parametrize("source", OWNER_KINDS)
def test_a_dependency_and_another_interpreter_reach_the_tests(own_project, source):
    if not other_runtimes():
        pytest.skip(f"no offered runtime but {THIS_RUNTIME} is installed here")
    chosen = chosen_runtime(source)

    project, output = own_project(source)

    make(project, "lint", f"PYTHON={chosen}")
    assert f"Python {chosen.removeprefix('python')}" in output
    assert "test_a_receipt_lists_the_order PASSED" in make(
        project, "test", f"PYTHON={chosen}", "ARGS=-v tests/test_service.py"
    )
    assert list((project / ".venv").glob(f".installed-{chosen}"))


def test_with_uv_on_path_the_venv_is_made_by_uv_and_its_tests_pass(cookies, tmp_path):
    """The Makefile's fast path, with the real uv (from requirements-dev.txt); every other
    `make test` here runs without uv on PATH, so pip's path is the one they take."""
    project = baked(cookies, event_source="sqs")
    uv_only = tmp_path / "bin"
    uv_only.mkdir()
    (uv_only / "uv").symlink_to(Path(sys.executable).parent / "uv")
    path = f"PATH={uv_only}:{os.environ['PATH']}"
    result = run(
        ["env", path, "make", "test", "ARGS=tests/test_service.py"], cwd=project, timeout=900
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "uv venv" in result.stdout
    assert "uv pip install" in result.stdout
    assert "uv = " in (project / ".venv" / "pyvenv.cfg").read_text()  # uv's mark on its venvs
    assert " passed" in result.stdout
