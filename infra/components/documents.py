"""Documents in, for RAG: the bucket, its notifications through SQS (with a dead-letter queue),
the ingest function, the document and idempotency tables, and the OpenSearch domain that holds
the BM25 text index and the k-NN vector index.

S3 → SQS → Lambda rather than S3 → Lambda: the queue absorbs a bulk upload at the function's
pace, retries a failed record on its own (partial batch responses), and after `max_receives`
attempts parks it in the DLQ, where an alarm shows it. The queue's visibility timeout is six
times the function's, as AWS advises, so a slow batch is not redelivered while still running.

The k-NN plugin ships with every OpenSearch 2.x domain; the indexes turn it on themselves
(`index.knn: true`), so the domain needs no plugin setting. Access is IAM (SigV4) from the
functions' roles; the domain has no public access policy of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.layers import ARCHITECTURE, RUNTIME

INGEST_TIMEOUT_SECONDS = 300
TEXT_INDEX = "lockgate-rag-text"
VECTOR_INDEX = "lockgate-rag-vectors"
_CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "README*"]


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
        instance_type: str = "t3.medium.search",
        data_nodes: int = 1,
        volume_gib: int = 20,
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
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.domain = opensearch.Domain(
            self,
            "Search",
            version=opensearch.EngineVersion.OPENSEARCH_2_19,
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=instance_type,
                data_nodes=data_nodes,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(
                volume_size=volume_gib, volume_type=cdk.aws_ec2.EbsDeviceVolumeType.GP3
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            removal_policy=removal_policy,
        )

        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(code_dir), exclude=_CODE_EXCLUDES),
            handler="handler.handler",
            layers=list(layers),
            environment={
                **environment,
                **self.environment(),
                "LOCKGATE_IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
                "POWERTOOLS_SERVICE_NAME": "lockgate-ingest",
                "POWERTOOLS_METRICS_NAMESPACE": "Lockgate",
            },
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(INGEST_TIMEOUT_SECONDS),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            description="Lockgate RAG ingestion (S3 events through SQS)",
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
        self.bucket.grant_read(self.function)
        self.documents_table.grant_read_write_data(self.function)
        self.idempotency_table.grant_read_write_data(self.function)
        self.domain.grant_read_write(self.function)
        self.domain.grant_index_read_write(TEXT_INDEX, self.function)
        self.domain.grant_index_read_write(VECTOR_INDEX, self.function)

        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5)
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="Documents that failed ingestion repeatedly are in the DLQ",
        )

    def environment(self) -> dict[str, str]:
        """What a function needs to reach the RAG stores (`lockgate.rag.wiring.aws` reads it)."""
        return {
            "LOCKGATE_DOCUMENTS_TABLE": self.documents_table.table_name,
            "LOCKGATE_OPENSEARCH_URL": f"https://{self.domain.domain_endpoint}",
            "LOCKGATE_OPENSEARCH_AUTH": "sigv4",
            "LOCKGATE_RAG_TEXT_INDEX": TEXT_INDEX,
            "LOCKGATE_RAG_VECTOR_INDEX": VECTOR_INDEX,
        }

    def allow_retrieval(self, function: lambda_.IFunction) -> None:
        """Lets a serving function search the indexes and read the document table (listing,
        collection versions); writes stay with the ingest function."""
        self.domain.grant_read(function)
        self.domain.grant_index_read(TEXT_INDEX, function)
        self.domain.grant_index_read(VECTOR_INDEX, function)
        self.documents_table.grant_read_data(function)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["es:ESHttpPost"],
                resources=[
                    self.domain.domain_arn + f"/{TEXT_INDEX}/_search",
                    self.domain.domain_arn + f"/{VECTOR_INDEX}/_search",
                ],
            )
        )
