"""The same handlers written with Powertools for AWS Lambda (Python): the reference.

As its documentation shows them: ``@idempotent`` for a single event, and for batches
``BatchProcessor`` with an ``@idempotent_function`` keyed on each record's id. They persist to
their own DynamoDB table, on the same endpoint as the generated dedup, and do the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
    idempotent_function,
)

Handler = Callable[[dict[str, Any], Any], Any]


def single_event_handler(client: Any, table: str, work: Callable[[Any], Any]) -> Handler:
    """One event per invocation, keyed on its ``id`` (EventBridge's)."""
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    config = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=108000)

    @idempotent(persistence_store=persistence, config=config)
    def handler(event: dict[str, Any], context: Any) -> Any:
        return work(event)

    return handler


def batch_handler(client: Any, table: str, kind: str, work: Callable[[Any], Any]) -> Handler:
    """A batch (``kind``: "sqs" or "kinesis"), each record keyed on its own id."""
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    key = {"sqs": "messageId", "kinesis": "eventID"}[kind]
    config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=345780)
    event_type = {"sqs": EventType.SQS, "kinesis": EventType.KinesisDataStreams}[kind]
    processor = BatchProcessor(event_type=event_type)

    @idempotent_function(
        data_keyword_argument="record", persistence_store=persistence, config=config
    )
    def handle_record(record: dict[str, Any]) -> Any:
        return work(record)

    def handler(event: dict[str, Any], context: Any) -> Any:
        config.register_lambda_context(context)
        return process_partial_response(
            event=event,
            record_handler=lambda record: handle_record(record=record.raw_event),
            processor=processor,
            context=context,
        )

    return handler
