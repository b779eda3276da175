"""The optional VPC (context `vpc: true`): the functions and the search domain (or the Serverless
collection's endpoint) in private subnets.

Two AZs with one NAT gateway: OpenAI and Anthropic are on the internet, and a policy may route
to them. AWS services the functions call on every request stay off the NAT: DynamoDB and S3
through gateway endpoints (free), Bedrock and Secrets Manager through interface endpoints;
anything else (X-Ray, Step Functions, API Gateway's management API) leaves through the NAT.
Function logs need no route: the Lambda service ships them. Flow logs go to CloudWatch with a
month's retention.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

INTERFACE_ENDPOINTS = {
    "BedrockRuntime": ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
                )
            },
        )
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        # The functions' group: outbound only. The endpoints and the search domain admit
        # HTTPS from it alone, not from the whole VPC.
        self.functions = ec2.SecurityGroup(
            self, "Functions", vpc=self.vpc, description="Lockgate functions (egress only)"
        )
        self.endpoints = self._https_from_functions(
            "Endpoints", "Lockgate interface endpoints: HTTPS from the functions"
        )
        self.search = self._https_from_functions(
            "Search", "Lockgate OpenSearch: HTTPS from the functions"
        )
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                security_groups=[self.endpoints],
                open=False,
            )

    def _https_from_functions(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )
        group.add_ingress_rule(self.functions, ec2.Port.tcp(443), "HTTPS from the functions")
        return group

    @property
    def subnets(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
