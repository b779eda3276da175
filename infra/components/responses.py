"""`/v1/responses` conversation state in AWS: one DynamoDB table.

The shape matches `lockgate.stores.aws.responses.DynamoResponseStore`: partition key `pk`
(`<tenant>#<response id>`), the compressed conversation in `body`, TTL on `expires_at`. Without
the table the functions would keep conversations in their own /tmp, so a follow-up
(`previous_response_id`) landing on another instance would not find its predecessor.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.components.tables import durable_table

TABLE_ENV = "LOCKGATE_RESPONSE_TABLE"
ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
"""What the store calls: store a response, read it back (consistent read), delete it."""


class ResponseStore(Construct):
    """The table: on-demand, TTL, point-in-time recovery, encrypted, kept on stack deletion."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = durable_table(self, "Table", ttl="expires_at", removal_policy=removal_policy)

    def attach(self, function: lambda_.Function) -> None:
        """The item calls on this table only (no scan, query or index), and its name."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(ACTIONS), resources=[self.table.table_arn])
        )
        function.add_environment(TABLE_ENV, self.table.table_name)
