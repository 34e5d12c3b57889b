"""The same handlers written with Powertools for AWS Lambda (Python): the reference.

As its documentation shows them: ``@idempotent`` for a single event, and for batches one of
its batch processors with an ``@idempotent_function`` keyed on each record's id. Each batch
source has the processor Powertools 3.37 offers for it:

* SQS and Kinesis: ``BatchProcessor``, keyed on ``messageId`` or ``eventID``;
* SQS FIFO: ``SqsFifoPartialProcessor(skip_group_on_error=True)``, keyed on ``messageId``: a
  failed message stops its own message group only, as the generated handler does;
* Kafka (MSK): ``BatchProcessor(EventType.Kafka)``, keyed on the record's topic, partition and
  offset. (3.37 has one, reporting failures by partition and offset; it goes on past a failed
  record within its partition, where the generated handler stops that partition and raises.
  Without failures, as benchmarked, both claim, work and complete every record alike.)

They persist to their own DynamoDB table, on the same endpoint as the generated dedup, and do
the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
    idempotent_function,
)

Handler = Callable[[dict[str, Any], Any], Any]

# Per batch source: the record's id (a JMESPath expression) and the template's TTL for it.
KEYS = {
    "sqs": ("messageId", 345780),
    "kinesis": ("eventID", 345780),
    "sqs_fifo": ("messageId", 345780),
    "msk": ("[topic, partition, offset]", 1213200),
}


def single_event_handler(client: Any, table: str, work: Callable[[Any], Any]) -> Handler:
    """One event per invocation, keyed on its ``id`` (EventBridge's)."""
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    config = IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=108000)

    @idempotent(persistence_store=persistence, config=config)
    def handler(event: dict[str, Any], context: Any) -> Any:
        return work(event)

    return handler


def batch_handler(client: Any, table: str, kind: str, work: Callable[[Any], Any]) -> Handler:
    """A batch (``kind``: a key of KEYS), each record keyed on its own id."""
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    key, ttl = KEYS[kind]
    config = IdempotencyConfig(event_key_jmespath=key, expires_after_seconds=ttl)
    processor = _processor(kind)

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


def _processor(kind: str) -> BatchProcessor:
    if kind == "sqs_fifo":
        return SqsFifoPartialProcessor(skip_group_on_error=True)
    event_type = {
        "sqs": EventType.SQS,
        "kinesis": EventType.KinesisDataStreams,
        "msk": EventType.Kafka,
    }[kind]
    return BatchProcessor(event_type=event_type)
