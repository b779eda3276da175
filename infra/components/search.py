"""The OpenSearch behind the RAG indexes and the semantic cache: a managed domain or a
Serverless VECTORSEARCH collection (context `search: domain|serverless`).

Both are reached with SigV4 from the functions' roles and nothing else. The functions create
the indexes they use when missing (`ensure_index` at start), so the index mapping lives in one
place, the code that reads it, and an index deleted by an operator comes back with the right
mapping on the next cold start; a deploy-time custom resource would have to duplicate the
mapping (its vector dimension depends on the embedder the functions load) and would not. The
grants below are what that code calls, path by path:

| call | path | who |
|---|---|---|
| exists, create | `HEAD /i`, `PUT /i` | every function, each of its indexes |
| mapping check | `GET /i/_mapping` | every function |
| search | `POST /i/_search` | every function |
| index, delete docs | `POST /i/_bulk` | the indexes a function writes |
| purge, replace | `POST /i/_delete_by_query` | the indexes a function writes |

Serving functions write the semantic cache index; `orchestrate` (uploads) and `ingest` write the
RAG indexes. Bulk requests name their index in the path, and the domain refuses an index named
inside a bulk body (`rest.action.multi.allow_explicit_index: false`), so these per-index grants
hold for bulk writes too. On Serverless the data access policy says the same per role and index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

SERVICE_ENV = "LOCKGATE_OPENSEARCH_SERVICE"
URL_ENV = "LOCKGATE_OPENSEARCH_URL"


class SearchStore(Protocol):
    """What the stack needs from either kind of OpenSearch."""

    @property
    def environment(self) -> dict[str, str]: ...

    def grant(
        self,
        role: iam.IRole,
        *,
        read: Sequence[str],
        write: Sequence[str],
    ) -> None:
        """`role` may create and search every index in `read` and `write`, write documents
        in those of `write`, and purge them."""

    def finalize(self) -> None:
        """Writes the resource policy naming every role granted so far."""


class SearchDomain(Construct):
    """A managed OpenSearch 2.x domain: encrypted at rest and between nodes, HTTPS with TLS 1.2
    only, slow and error logs in CloudWatch, and an access policy that names the functions'
    roles (so even an over-broad identity policy elsewhere in the account gets nothing).

    One data node by default (a starter deployment); indexes are created with no replicas,
    so the one node stays green. `vpc` puts it in the VPC's private subnets. Deleted with the
    stack: everything in it is rebuilt from the documents bucket, and the semantic cache is
    disposable, so keeping it would only keep its hourly cost."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        instance_type: str,
        volume_gib: int,
        vpc: ec2.IVpc | None = None,
        security_group: ec2.ISecurityGroup | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self._principals: list[iam.IRole] = []
        logs_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        placement = {}
        if vpc is not None:
            subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            placement = {
                "vpc": vpc,
                "vpc_subnets": [ec2.SubnetSelection(subnets=subnets.subnets[:1])],
                "security_groups": [security_group] if security_group else None,
            }
        # Named, so the access policy can name the domain without referring to itself.
        self.name = name
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=name,
            version=opensearch.EngineVersion.OPENSEARCH_2_19,
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=instance_type,
                data_nodes=1,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(
                volume_size=volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=logs_group,
                slow_index_log_enabled=True,
                slow_index_log_group=logs_group,
                app_log_enabled=True,
                app_log_group=logs_group,
            ),
            # The log group's resource policy is written below as a plain CloudFormation
            # resource, rather than by the custom resource (a Lambda) CDK would add.
            suppress_logs_resource_policy=True,
            # Bulk writes must name their index in the path, where IAM sees it.
            advanced_options={"rest.action.multi.allow_explicit_index": "false"},
            removal_policy=removal_policy,
            **placement,  # type: ignore[arg-type]
        )
        logs_policy = logs.CfnResourcePolicy(
            self,
            "LogsPolicy",
            policy_name=f"{cdk.Names.unique_id(self)}-opensearch-logs"[-255:],
            policy_document=cdk.Stack.of(self).to_json_string(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "es.amazonaws.com"},
                            "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                            "Resource": logs_group.log_group_arn,
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}
                            },
                        }
                    ],
                }
            ),
        )
        # OpenSearch checks the log group's policy when the domain is created or updated.
        self.domain.node.add_dependency(logs_policy)

    @property
    def environment(self) -> dict[str, str]:
        return {URL_ENV: f"https://{self.domain.domain_endpoint}", SERVICE_ENV: "es"}

    def grant(self, role: iam.IRole, *, read: Sequence[str], write: Sequence[str]) -> None:
        arn = self.domain.domain_arn
        indexes = list(dict.fromkeys([*read, *write]))

        def paths(*suffixes: str, of: Sequence[str] = indexes) -> list[str]:
            return [f"{arn}/{index}{suffix}" for index in of for suffix in suffixes]

        for actions, resources in (
            (["es:ESHttpHead", "es:ESHttpGet"], paths("", "/_mapping")),
            (["es:ESHttpPut"], paths("")),
            (
                ["es:ESHttpPost"],
                [*paths("/_search"), *paths("/_bulk", "/_delete_by_query", of=write)],
            ),
        ):
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
        self._principals.append(role)

    def finalize(self) -> None:
        if not self._principals:
            return
        cfn = self.domain.node.default_child
        assert isinstance(cfn, opensearch.CfnDomain)
        cfn.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [role.role_arn for role in self._principals]},
                    "Action": "es:ESHttp*",
                    "Resource": cdk.Stack.of(self).format_arn(
                        service="es", resource="domain", resource_name=f"{self.name}/*"
                    ),
                }
            ],
        }


class SearchCollection(Construct):
    """An OpenSearch Serverless VECTORSEARCH collection with its three policies: encryption
    (AWS-owned key), network (public endpoint, or only through a VPC endpoint when `vpc` is
    set) and data access (per role and per index, written by `finalize`).

    Standby replicas are off: a one-AZ starter at half the minimum capacity. Serverless bills at
    least 1 OCU (0.5 indexing + 0.5 search) around the clock; see the README's cost table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        vpc: ec2.IVpc | None = None,
        security_group: ec2.ISecurityGroup | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self._rules: list[tuple[iam.IRole, list[str], list[str]]] = []
        encryption = aoss.CfnSecurityPolicy(
            self,
            "Encryption",
            name=f"{name}-enc",
            type="encryption",
            policy=json.dumps(
                {
                    "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
                    "AWSOwnedKey": True,
                }
            ),
        )
        network_rule: dict[str, object] = {
            "Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
            "AllowFromPublic": True,
        }
        if vpc is not None:
            subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            endpoint = aoss.CfnVpcEndpoint(
                self,
                "Endpoint",
                name=f"{name}-vpce",
                vpc_id=vpc.vpc_id,
                subnet_ids=subnets.subnet_ids,
                security_group_ids=[security_group.security_group_id] if security_group else None,
            )
            network_rule = {**network_rule, "AllowFromPublic": False, "SourceVPCEs": [endpoint.ref]}
        network = aoss.CfnSecurityPolicy(
            self,
            "Network",
            name=f"{name}-net",
            type="network",
            policy=cdk.Stack.of(self).to_json_string([network_rule]),
        )
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            standby_replicas="DISABLED",
            description="Lockgate RAG indexes and semantic cache",
        )
        self.collection.add_resource_dependency(encryption)
        self.collection.add_resource_dependency(network)

    @property
    def environment(self) -> dict[str, str]:
        return {URL_ENV: self.collection.attr_collection_endpoint, SERVICE_ENV: "aoss"}

    def grant(self, role: iam.IRole, *, read: Sequence[str], write: Sequence[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[self.collection.attr_arn])
        )
        self._rules.append((role, list(read), list(write)))

    def finalize(self) -> None:
        statements = []
        for role, read, write in self._rules:
            rules = []
            read_only = [index for index in read if index not in write]
            if read_only:
                rules.append(self._index_rule(read_only, ["aoss:ReadDocument"]))
            if write:
                rules.append(self._index_rule(write, ["aoss:ReadDocument", "aoss:WriteDocument"]))
            statements.append({"Rules": rules, "Principal": [role.role_arn]})
        if statements:
            aoss.CfnAccessPolicy(
                self,
                "DataAccess",
                name=f"{self.name}-data",
                type="data",
                policy=cdk.Stack.of(self).to_json_string(statements),
            )

    def _index_rule(self, indexes: Sequence[str], permissions: list[str]) -> dict[str, object]:
        return {
            "ResourceType": "index",
            "Resource": [f"index/{self.name}/{index}" for index in indexes],
            "Permission": [
                "aoss:CreateIndex",
                "aoss:DescribeIndex",
                *permissions,
            ],
        }
