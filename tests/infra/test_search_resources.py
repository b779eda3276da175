"""The managed OpenSearch domain in the VPC (`vpc=true`, `search=domain`), synthesized in a small
stack of its own: the whole-stack tests cover the domain without a VPC and the collection in
one. Verified by synthesis only."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture(scope="module")
def template(load_infra: Any) -> Any:
    cdk = load_infra("aws_cdk")
    iam = load_infra("aws_cdk.aws_iam")
    assertions = load_infra("aws_cdk.assertions")
    network = load_infra("infra.components.network")
    search = load_infra("infra.components.search")
    app = cdk.App()
    stack = cdk.Stack(app, "SearchTest", env=cdk.Environment(region="eu-west-1"))
    net = network.Network(stack, "Network")
    domain = search.SearchDomain(
        stack,
        "Search",
        name="test-search",
        instance_type="t3.small.search",
        volume_gib=10,
        vpc=net.vpc,
        security_group=net.search,
    )
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    domain.grant(role, read=["docs"], write=[])
    domain.finalize()
    return assertions.Template.from_stack(stack)


def test_domain_sits_in_one_private_subnet_behind_the_search_group(template: Any) -> None:
    ((_, domain),) = template.find_resources("AWS::OpenSearchService::Domain").items()
    options = domain["Properties"]["VPCOptions"]
    assert len(options["SubnetIds"]) == 1
    (group,) = options["SecurityGroupIds"]
    group_id = group["Fn::GetAtt"][0]
    assert group_id.startswith("NetworkSearch")
    ingress = template.find_resources("AWS::EC2::SecurityGroupIngress")
    rules = [r["Properties"] for r in ingress.values() if r["Properties"]["GroupId"] == group]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(443, 443)]
    assert rules[0]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("NetworkFunctions")


def test_a_reader_may_create_and_search_its_index_but_not_purge_it(template: Any) -> None:
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"][0]["Ref"].startswith("Reader")
    ]
    statements = json.dumps(policy["Properties"]["PolicyDocument"]["Statement"])
    assert '"/docs"' in statements and '"/docs/_search"' in statements
    assert "_delete_by_query" not in statements
    ((_, domain),) = template.find_resources("AWS::OpenSearchService::Domain").items()
    (statement,) = domain["Properties"]["AccessPolicies"]["Statement"]
    (principal,) = statement["Principal"]["AWS"]
    assert principal["Fn::GetAtt"][0].startswith("Reader")
    assert "domain/test-search/*" in json.dumps(statement["Resource"])
