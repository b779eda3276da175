"""The shape Lockgate's DynamoDB tables share: on demand, point-in-time recovery, encrypted with
the AWS-managed key. One place, so a table added later cannot forget PITR or encryption."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct


def string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def durable_table(
    scope: Construct,
    construct_id: str,
    *,
    partition: str = "pk",
    sort: str | None = None,
    ttl: str | None = None,
    removal_policy: cdk.RemovalPolicy,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=string_key(partition),
        sort_key=string_key(sort) if sort else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=ttl,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=removal_policy,
    )
