"""The exact cache's storage in AWS: a DynamoDB table and an S3 bucket for oversized answers.

The shape matches `lockgate.stores.aws.exact_cache.DynamoExactCache`: partition key `pk` (the
cache key), TTL on `expires_at`, and the `by_scope` index (tenant, alias) that purges query.
Answers over DynamoDB's 400 KB item limit (after zlib) live under `exact-cache/` in the bucket;
a lifecycle rule removes them after `blob_retention`, since TTL deletes only the items.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.tables import durable_table

TABLE_ENV = "LOCKGATE_EXACT_CACHE_TABLE"
BUCKET_ENV = "LOCKGATE_EXACT_CACHE_BUCKET"
INDEX_NAME = "by_scope"
BLOB_PREFIX = "exact-cache/"


class ExactCacheStore(Construct):
    """The table (on-demand, TTL, point-in-time recovery) and the bucket for big answers."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        blob_retention: cdk.Duration | None = None,
        access_logs: s3.IBucket | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = durable_table(self, "Table", ttl="expires_at", removal_policy=removal_policy)
        self.table.add_global_secondary_index(
            index_name=INDEX_NAME,
            partition_key=dynamodb.Attribute(name="tenant", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="alias", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["s3_key"],
        )
        self.bucket = s3.Bucket(
            self,
            "Blobs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="exact-cache/" if access_logs else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    prefix=BLOB_PREFIX,
                    expiration=blob_retention or cdk.Duration.days(7),
                    # Versioning keeps a replaced answer; a day is enough to undo a bad purge.
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )

    @property
    def environment(self) -> dict[str, str]:
        """What `DynamoExactCache` is built from, as the functions' environment variables."""
        return {TABLE_ENV: self.table.table_name, BUCKET_ENV: self.bucket.bucket_name}

    def grant_read_write(self, grantee: iam.IGrantable) -> None:
        """Get, conditional put, purge (index query + batch delete) and the big-answer objects."""
        self.table.grant_read_write_data(grantee)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[self.bucket.arn_for_objects(f"{BLOB_PREFIX}*")],
            )
        )
        # Without ListBucket a missing object reads as 403, not the NoSuchKey the store expects.
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )

    def attach(self, function: lambda_.Function) -> None:
        """Grants access and sets the environment on one function."""
        self.grant_read_write(function)
        for name, value in self.environment.items():
            function.add_environment(name, value)
