"""The test endpoint itself: atomic per item as DynamoDB is, so that races blame only our code.

The race, fault and schedule tests run against tools/dynamodb_server.py. These tests show
that it holds what those tests take for granted: one winner among writers racing for one
item, transactions that apply all of their writes or none, and faults that strike exactly
the calls they were set for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from moto.core.model_instances import model_data

from tools.dynamodb_server import FAULT_KINDS, DynamoServer

WRITERS = 8
ROUNDS = 8


def race(attempts: list[Callable[[], str]]) -> list[str]:
    """Run every attempt in a thread of its own, all released at once; what each got."""
    start = threading.Barrier(len(attempts))
    outcomes = [""] * len(attempts)

    def run(position: int) -> None:
        start.wait(timeout=10)
        try:
            attempts[position]()
        except ClientError as error:
            outcomes[position] = error.response["Error"]["Code"]
        else:
            outcomes[position] = "won"

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return outcomes


def put_if_absent(client: Any, table: str, key: str) -> Any:
    return client.put_item(
        TableName=table, Item={"id": {"S": key}}, ConditionExpression="attribute_not_exists(id)"
    )


def count_and_claim(client: Any, table: str, unit: str, effect: str, writer: str) -> Any:
    """One transaction: add one to ``effect``'s runs, and create ``unit`` if it is absent."""
    return client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": {"id": {"S": effect}},
                    "UpdateExpression": "ADD runs :one SET by_writer = :writer",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":writer": {"S": writer}},
                }
            },
            {
                "Put": {
                    "TableName": table,
                    "Item": {"id": {"S": unit}, "by_writer": {"S": writer}},
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
        ]
    )


@pytest.fixture
def table(server: DynamoServer) -> str:
    name = server.new_table_name("endpoint")
    server.client().create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def test_exactly_one_of_eight_racing_conditional_puts_wins_every_round(server, table):
    writers = [server.client() for _ in range(WRITERS)]
    refused = ["ConditionalCheckFailedException"] * (WRITERS - 1)
    for number in range(ROUNDS):
        key = f"unit-{number}"

        outcomes = race([partial(put_if_absent, client, table, key) for client in writers])

        assert sorted(outcomes) == sorted(["won", *refused]), f"round {number}"


def test_one_of_eight_racing_transactions_commits_whole_and_the_rest_not_at_all(server, table):
    writers = [server.client() for _ in range(WRITERS)]
    canceled = ["TransactionCanceledException"] * (WRITERS - 1)
    for number in range(ROUNDS // 2):
        unit, effect = f"unit-{number}", f"effect-{number}"
        attempts = [
            partial(count_and_claim, client, table, unit, effect, f"writer-{position}")
            for position, client in enumerate(writers)
        ]

        outcomes = race(attempts)

        get = writers[0].get_item
        effect_item = get(TableName=table, Key={"id": {"S": effect}})["Item"]
        unit_item = get(TableName=table, Key={"id": {"S": unit}})["Item"]
        assert sorted(outcomes) == sorted(["won", *canceled]), f"round {number}"
        assert effect_item["runs"] == {"N": "1"}  # the losers' updates never landed
        assert effect_item["by_writer"] == unit_item["by_writer"]  # both writes of one winner


def test_a_refused_transaction_applies_none_of_its_writes_and_says_which_item_refused(
    server, table
):
    client = server.client()
    client.put_item(TableName=table, Item={"id": {"S": "unit"}, "status": {"S": "COMPLETED"}})

    with pytest.raises(ClientError) as refused:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"id": {"S": "effect"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"id": {"S": "unit"}},
                        "UpdateExpression": "SET checked = :yes",
                        "ConditionExpression": "#status = :in_progress",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":yes": {"S": "yes"},
                            ":in_progress": {"S": "IN_PROGRESS"},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )

    reasons = refused.value.response["CancellationReasons"]
    assert [reason["Code"] for reason in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["status"] == {"S": "COMPLETED"}  # what dedup recognises
    assert "Item" not in client.get_item(TableName=table, Key={"id": {"S": "effect"}})


def test_no_write_is_lost_to_a_refused_transaction_running_beside_it(server, table):
    client = server.client()
    client.put_item(TableName=table, Item={"id": {"S": "held"}, "status": {"S": "COMPLETED"}})
    refused = {
        "ConditionCheck": {
            "TableName": table,
            "Key": {"id": {"S": "held"}},
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }
    writers = [server.client() for _ in range(WRITERS)]
    for number in range(ROUNDS):
        keys = [f"write-{number}-{n}" for n in range(WRITERS // 2)]
        attempts = [
            partial(writer.transact_write_items, TransactItems=[refused])
            for writer in writers[: WRITERS // 2]
        ] + [
            partial(count_and_claim, writer, table, key, f"count-{key}", "writer")
            for writer, key in zip(writers[WRITERS // 2 :], keys, strict=True)
        ]

        outcomes = race(attempts)

        assert outcomes[WRITERS // 2 :] == ["won"] * len(keys)
        found = [client.get_item(TableName=table, Key={"id": {"S": key}}) for key in keys]
        assert all("Item" in item for item in found), f"round {number}: a write was undone"


@pytest.mark.parametrize("kind", [kind for kind in FAULT_KINDS if kind != "delay"])
def test_a_fault_strikes_only_the_calls_it_was_set_for(server, table, kind):
    client = server.client(retries={"mode": "standard", "total_max_attempts": 1})
    server.clear()
    server.inject("PutItem", kind, calls=1)

    with pytest.raises((ClientError, BotoCoreError)):
        client.put_item(TableName=table, Item={"id": {"S": f"struck-{kind}"}})
    client.put_item(TableName=table, Item={"id": {"S": f"spared-{kind}"}})
    client.get_item(TableName=table, Key={"id": {"S": "anything"}})

    struck = client.get_item(TableName=table, Key={"id": {"S": f"struck-{kind}"}})
    assert ("Item" in struck) == (kind == "lost")  # applied, though the answer never came
    assert "Item" in client.get_item(TableName=table, Key={"id": {"S": f"spared-{kind}"}})
    assert server.requests["PutItem"] == 2


def test_it_keeps_no_copy_of_what_it_served(server, table):
    """moto lists every model object it makes; kept, a long run (make soak) runs out of memory."""
    client = server.client()
    client.put_item(TableName=table, Item={"id": {"S": "kept-once"}})
    client.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {"id": {"S": "kept-twice"}}}}]
    )

    assert all(not model.instances_tracked for model in model_data["dynamodb"].values())
