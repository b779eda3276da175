"""The cdk-nag AwsSolutions findings this stack accepts, each with the reason it is accepted.

`infra/app.py` runs `AwsSolutionsChecks` on every synth; a finding not suppressed here fails
the synth (and the tests). Suppressions are per resource and, for IAM wildcards, per finding
(`applies_to`), so a new wildcard elsewhere still fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct

if TYPE_CHECKING:
    from infra.stack import LockgateStack

S3_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def _regex(pattern: str) -> dict[str, str]:
    return {"regex": f"/{pattern}/g"}


FUNCTION_ROLE = [
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="X-Ray's PutTraceSegments and PutTelemetryRecords take no resource-level "
        "permissions (nor do the EC2 network-interface actions of a function in a VPC), "
        "so they are granted on '*'.",
        applies_to=["Resource::*"],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="The table's own secondary indexes (the exact cache purges through "
        "`by_scope`); no other table.",
        applies_to=[_regex(r"^Resource::<[A-Za-z0-9]+Table[0-9A-F]{8}\.Arn>\/index\/\*$")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Big exact-cache answers are objects under the `exact-cache/` prefix of the "
        "cache bucket; their keys are content hashes, unknown in advance.",
        applies_to=[_regex(r"^Resource::<CacheBlobs[0-9A-F]{8}\.Arn>\/exact-cache\/\*$")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Ingestion reads any object of the documents bucket: tenants upload under "
        "`<tenant>/<collection>/`, names not known at deploy time.",
        applies_to=[_regex(r"^Resource::<DocumentsBucket[0-9A-F]{8}\.Arn>\/\*$")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Only the configured Bedrock models. The region is '*' because a cross-region "
        "inference profile routes to the model in any region of its geography, which "
        "needs the foundation model there too; the profile itself is in this region.",
        applies_to=[
            _regex(r"^Resource::arn:<AWS::Partition>:bedrock:\*::foundation-model\/[^*]+$"),
            _regex(
                r"^Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:"
                r"inference-profile\/\*\.[^*]+$"
            ),
        ],
    ),
]

RUNTIME = NagPackSuppression(
    id="AwsSolutions-L1",
    reason="Python 3.12 on purpose: the layer's wheels are built and pinned for it, and a "
    "runtime bump is a change to build and test, not a default to float.",
)


def suppress_function_roles(roles: Iterable[IConstruct]) -> None:
    """The wildcards every Lockgate function role may carry; others still fail."""
    for role in roles:
        NagSuppressions.add_resource_suppressions(role, FUNCTION_ROLE, apply_to_children=True)


def suppress(stack: LockgateStack) -> None:
    functions = [stack.gateway.function, stack.orchestrate.function, stack.documents.function]
    if stack.failover is not None:
        functions.append(stack.failover.function)
    suppress_function_roles(f.role for f in functions if f.role is not None)
    NagSuppressions.add_resource_suppressions(functions, [RUNTIME])

    _api(stack)
    _search(stack)
    if stack.secret.secret.node.default_child is not None:
        NagSuppressions.add_resource_suppressions(
            stack.secret.secret,
            [
                NagPackSuppression(
                    id="AwsSolutions-SMG4",
                    reason="Holds third-party API keys (OpenAI, Anthropic), which are rotated "
                    "at the provider and put here with put-secret-value; Secrets Manager has "
                    "no rotation function for them.",
                )
            ],
        )
    NagSuppressions.add_resource_suppressions_by_path(
        stack,
        f"/{stack.node.path}/{S3_NOTIFICATIONS_HANDLER}/Role/Resource",
        [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="CDK's own handler that writes the documents bucket's notification "
                "configuration at deploy time; it only needs to log.",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole"
                ],
            )
        ],
    )


def _api(stack: LockgateStack) -> None:
    api = stack.api.rest_api
    NagSuppressions.add_resource_suppressions(
        api,
        [
            NagPackSuppression(
                id="AwsSolutions-APIG2",
                reason="The app validates every body itself and answers in the caller's "
                "protocol (OpenAI or Anthropic error envelope); API Gateway's validator would "
                "answer in its own format, which SDKs cannot parse.",
            ),
            NagPackSuppression(
                id="AwsSolutions-APIG4",
                reason="Every method requires an API key in a usage plan (throttle, quota); "
                "the app maps the key id API Gateway verified to its tenant and checks its "
                "limits. OpenAI and Anthropic clients send keys, not IAM or JWT credentials.",
            ),
            NagPackSuppression(
                id="AwsSolutions-COG4",
                reason="Callers are API clients with per-tenant API keys (usage plans), not "
                "Cognito users.",
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="The account-level role API Gateway itself uses to write execution and "
                "access logs; AWS maintains its permissions.",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AmazonAPIGatewayPushToCloudWatchLogs"
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-APIG3",
                reason="No WAF by default (about $6 a month before requests): usage plans "
                "throttle per key and every method needs a key. Associate a web ACL with "
                "the stage to add one.",
            ),
        ],
        apply_to_children=True,
    )


def _search(stack: LockgateStack) -> None:
    from infra.components.search import SearchDomain

    if not isinstance(stack.search, SearchDomain):
        return
    findings: list[Any] = [
        NagPackSuppression(
            id="AwsSolutions-OS3",
            reason="No IP allow-list: the domain's access policy admits only the functions' "
            "roles, with SigV4-signed requests (and only from the VPC with `-c vpc=true`).",
        ),
        NagPackSuppression(
            id="AwsSolutions-OS4",
            reason="One data node for a starter deployment; dedicated masters add three "
            "nodes' cost. Production clusters should add them (README).",
        ),
        NagPackSuppression(
            id="AwsSolutions-OS7",
            reason="One data node cannot span zones; the indexes are rebuilt from the "
            "documents bucket and the cache is disposable.",
        ),
    ]
    if stack.network is None:
        findings.append(
            NagPackSuppression(
                id="AwsSolutions-OS1",
                reason="VPC placement is the `vpc` context option (it adds a NAT gateway and "
                "endpoints); without it the access policy and SigV4 guard the domain.",
            )
        )
    NagSuppressions.add_resource_suppressions(stack.search.domain, findings)
