"""Documents in, for RAG: the bucket, its notifications through SQS (with a dead-letter queue),
the ingest function, and the document and idempotency tables.

S3 → SQS → Lambda rather than S3 → Lambda: the queue absorbs a bulk upload at the function's
pace, retries a failed record on its own (partial batch responses), and after `max_receives`
attempts parks it in the DLQ, where an alarm (`infra.components.monitoring`) shows it. The
queue's visibility timeout is six times the function's, as AWS advises, so a slow batch is not
redelivered while still running.

The BM25 text index and the k-NN vector index live in the stack's OpenSearch
(`infra.components.search`); this construct names them, and the stack grants each function its
paths there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.functions import code_from, python_function
from infra.components.network import Network

INGEST_TIMEOUT_SECONDS = 300
TEXT_INDEX = "lockgate-rag-text"
VECTOR_INDEX = "lockgate-rag-vectors"
RAG_INDEXES = (TEXT_INDEX, VECTOR_INDEX)


class Documents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        memory_size: int = 2048,
        batch_size: int = 5,
        max_receives: int = 5,
        max_concurrency: int = 4,
        access_logs: s3.IBucket | None = None,
        network: Network | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="documents/" if access_logs else None,
            removal_policy=removal_policy,
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=cdk.Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(6 * INGEST_TIMEOUT_SECONDS),
            retention_period=cdk.Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=max_receives
            ),
        )
        destination = s3n.SqsDestination(self.queue)
        self.bucket.add_event_notification(s3.EventType.OBJECT_CREATED, destination)
        self.bucket.add_event_notification(s3.EventType.OBJECT_REMOVED, destination)

        self.documents_table = dynamodb.Table(
            self,
            "DocumentsTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.function = python_function(
            self,
            code=code_from(code_dir),
            handler="handler.handler",
            layers=layers,
            environment={
                **environment,
                **self.environment(),
                "LOCKGATE_IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
                "POWERTOOLS_SERVICE_NAME": "lockgate-ingest",
                "POWERTOOLS_METRICS_NAMESPACE": "Lockgate",
            },
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(INGEST_TIMEOUT_SECONDS),
            description="Lockgate RAG ingestion (S3 events through SQS)",
            network=network,
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=batch_size,
                max_batching_window=cdk.Duration.seconds(5),
                report_batch_item_failures=True,
                max_concurrency=max(2, max_concurrency),
            )
        )
        # Objects, and ListBucket so a removed object reads as 404 (skipped), not 403.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects("*")]
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )
        self.documents_table.grant_read_write_data(self.function)
        self.idempotency_table.grant_read_write_data(self.function)

    def environment(self) -> dict[str, str]:
        """What a function needs to reach the RAG stores (`lockgate.rag.wiring.aws` reads it),
        beside the search endpoint the stack adds."""
        return {
            "LOCKGATE_DOCUMENTS_TABLE": self.documents_table.table_name,
            "LOCKGATE_OPENSEARCH_AUTH": "sigv4",
            "LOCKGATE_RAG_TEXT_INDEX": TEXT_INDEX,
            "LOCKGATE_RAG_VECTOR_INDEX": VECTOR_INDEX,
        }

    def allow_retrieval(self, function: lambda_.IFunction) -> None:
        """The document table, read only (listing, collection versions)."""
        self.documents_table.grant_read_data(function)

    def allow_writes(self, function: lambda_.IFunction) -> None:
        """The document table, read and write: the upload and delete routes ingest in place."""
        self.documents_table.grant_read_write_data(function)
