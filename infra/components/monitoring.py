"""Alarms and a dashboard for the deployed gateway, with an SNS topic as every alarm's action.

Lockgate's own metrics (namespace `Lockgate`, EMF lines from the functions) come per `alias`,
errors also per `status_class` and cache hits per `kind`. The dashboard sums them with SEARCH
expressions, so every alias shows without listing it here. Alarms cannot use SEARCH: the
fallback-rate alarm reads the all-aliases series, the EMF dimension set `[]` (no dimensions)
beside `["alias"]`.

The topic is encrypted with a key of its own: CloudWatch alarms cannot publish to a topic
encrypted with the AWS-managed SNS key.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NAMESPACE = "Lockgate"
FIVE_MINUTES = cdk.Duration.minutes(5)

# Thresholds a starter deployment can live with; each alarm's description says what it means.
API_5XX_RATE = 0.05  # share of requests
LAMBDA_ERROR_PERCENT = 5
FALLBACK_PERCENT = 20
FREE_STORAGE_SHARE = 0.25


def lockgate_metric(name: str) -> cloudwatch.Metric:
    """The all-aliases series of one of Lockgate's metrics (no dimensions), summed per period."""
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, statistic="Sum", period=FIVE_MINUTES, label=name
    )


def across_aliases(
    name: str,
    *,
    statistic: str = "Sum",
    where: Mapping[str, str] | None = None,
    label: str | None = None,
    total: bool = True,
) -> cloudwatch.MathExpression:
    """A SEARCH over every alias's series of a metric (dashboards only): their sum, or one line
    per alias when `total` is false (percentiles do not add up)."""
    dimensions = ",".join(["alias", *(where or {})])
    filters = "".join(f' {key}="{value}"' for key, value in (where or {}).items())
    search = f"SEARCH('{{{NAMESPACE},{dimensions}}} MetricName=\"{name}\"{filters}', "
    search += f"'{statistic}', {int(FIVE_MINUTES.to_seconds())})"
    return cloudwatch.MathExpression(
        expression=f"SUM({search})" if total else search,
        label=label or name,
        period=FIVE_MINUTES,
        using_metrics={},
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigateway.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        dead_letters: sqs.IQueue,
        domain: opensearch.Domain | None,
        volume_gib: int,
        alarm_email: str | None,
        failover: tuple[sfn.IStateMachine, lambda_.IFunction] | None = None,
    ) -> None:
        """`failover`: the fail-over state machine and its attempt function, if deployed. The
        attempt function fails whenever a provider call does, so its error rate is the
        fallback alarm's business; its throttles and the machine's are capacity alarms."""
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "TopicKey",
            description="Lockgate alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self, "Alarms", display_name="Lockgate alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []

        requests = lockgate_metric("Requests")
        fallbacks = lockgate_metric("Fallbacks")
        self.alarm(
            "Api5xxRate",
            api.metric_server_error(statistic="Average", period=FIVE_MINUTES),
            threshold=API_5XX_RATE,
            periods=2,
            description=f"Over {API_5XX_RATE:.0%} of API requests answered 5xx for 10 minutes",
        )
        self.alarm(
            "FallbackRate",
            cloudwatch.MathExpression(
                expression="IF(requests > 0, 100 * fallbacks / requests, 0)",
                using_metrics={"requests": requests, "fallbacks": fallbacks},
                period=FIVE_MINUTES,
                label="fallback %",
            ),
            threshold=FALLBACK_PERCENT,
            periods=3,
            description=f"Over {FALLBACK_PERCENT}% of requests needed a fallback for 15 minutes: "
            "a provider or model is failing",
        )
        for name, function in functions.items():
            self.alarm(
                f"{name}ErrorRate",
                cloudwatch.MathExpression(
                    expression="IF(invocations > 0, 100 * errors / invocations, 0)",
                    using_metrics={
                        "errors": function.metric_errors(period=FIVE_MINUTES),
                        "invocations": function.metric_invocations(period=FIVE_MINUTES),
                    },
                    period=FIVE_MINUTES,
                    label=f"{name} error %",
                ),
                threshold=LAMBDA_ERROR_PERCENT,
                periods=2,
                description=f"Over {LAMBDA_ERROR_PERCENT}% of {name} invocations failed "
                "for 10 minutes",
            )
            self.alarm(
                f"{name}Throttles",
                function.metric_throttles(period=FIVE_MINUTES),
                threshold=1,
                periods=1,
                description=f"{name} was throttled: raise its concurrency or the account limit",
            )
        failover_widgets: list[cloudwatch.IWidget] = []
        if failover is not None:
            machine, attempt = failover
            self.alarm(
                "AttemptThrottles",
                attempt.metric_throttles(period=FIVE_MINUTES),
                threshold=1,
                periods=1,
                description="The fail-over's attempt function was throttled: its tries fail "
                "over without calling the model; raise its concurrency or the account limit",
            )
            self.alarm(
                "FailoverThrottled",
                machine.metric_throttled(period=FIVE_MINUTES),
                threshold=1,
                periods=1,
                description="Step Functions refused fail-over runs (Express start quota): "
                "buffered calls failed; request a higher StartSyncExecution quota",
            )
            failover_widgets = [
                graph(
                    "Fail-over runs",
                    [
                        machine.metric_succeeded(period=FIVE_MINUTES),
                        machine.metric_failed(period=FIVE_MINUTES),
                        machine.metric_timed_out(period=FIVE_MINUTES),
                    ],
                ),
                graph(
                    "Fail-over run time p99 (ms)",
                    [machine.metric_time(statistic="p99", period=FIVE_MINUTES)],
                ),
            ]
        self.alarm(
            "DeadLetters",
            dead_letters.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES),
            threshold=1,
            periods=1,
            description="Documents that failed ingestion repeatedly are in the DLQ",
        )
        search_widgets: list[cloudwatch.IWidget] = []
        if domain is not None:
            free_mb = volume_gib * 1024 * FREE_STORAGE_SHARE
            self.alarm(
                "SearchRed",
                domain.metric_cluster_status_red(period=cdk.Duration.minutes(1)),
                threshold=1,
                periods=1,
                description="OpenSearch is red: a primary shard is unassigned, searches fail",
            )
            self.alarm(
                "SearchYellow",
                domain.metric_cluster_status_yellow(period=FIVE_MINUTES),
                threshold=1,
                periods=3,
                description="OpenSearch is yellow for 15 minutes: a replica is unassigned",
            )
            self.alarm(
                "SearchFreeStorage",
                domain.metric_free_storage_space(period=FIVE_MINUTES),
                threshold=free_mb,
                periods=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
                description=f"OpenSearch has under {FREE_STORAGE_SHARE:.0%} of its volume free",
            )
            search_widgets = [
                graph(
                    "OpenSearch health",
                    [domain.metric_cluster_status_red(), domain.metric_cluster_status_yellow()],
                ),
                graph("OpenSearch free storage (MB)", [domain.metric_free_storage_space()]),
                graph(
                    "OpenSearch search latency (ms)",
                    [domain.metric_search_latency(), domain.metric_cpu_utilization()],
                ),
            ]

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=cdk.Duration.hours(6),
        )
        fns = list(functions.values()) + ([failover[1]] if failover else [])
        self.dashboard.add_widgets(
            graph(
                "Requests and fallbacks",
                [across_aliases("Requests"), across_aliases("Fallbacks")],
            ),
            graph(
                "Errors by status class",
                [
                    across_aliases("Errors", where={"status_class": c}, label=c)
                    for c in ("4xx", "5xx")
                ],
            ),
            graph(
                "First-token latency p90 by alias (ms)",
                [across_aliases("FirstTokenLatency", statistic="p90", total=False)],
            ),
        )
        self.dashboard.add_widgets(
            graph("Tokens", [across_aliases("InputTokens"), across_aliases("OutputTokens")]),
            graph(
                "Cost and cache savings (USD)",
                [across_aliases("CostUSD"), across_aliases("CacheSavingsUSD")],
            ),
            graph(
                "Cache hits and limit rejections",
                [
                    *(
                        across_aliases("CacheHits", where={"kind": k}, label=f"{k} hits")
                        for k in ("exact", "semantic")
                    ),
                    across_aliases("LimitRejections"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "API requests, 4xx, 5xx",
                [
                    api.metric_count(period=FIVE_MINUTES),
                    api.metric_client_error(period=FIVE_MINUTES),
                    api.metric_server_error(period=FIVE_MINUTES),
                ],
            ),
            graph(
                "API latency p99 (ms)",
                [
                    api.metric_latency(statistic="p99", period=FIVE_MINUTES),
                    api.metric_integration_latency(statistic="p99", period=FIVE_MINUTES),
                ],
            ),
            graph(
                "Ingestion DLQ depth",
                [dead_letters.metric_approximate_number_of_messages_visible()],
            ),
        )
        self.dashboard.add_widgets(
            graph("Lambda errors", [f.metric_errors(period=FIVE_MINUTES) for f in fns]),
            graph("Lambda throttles", [f.metric_throttles(period=FIVE_MINUTES) for f in fns]),
            graph(
                "Lambda duration p99 (ms)",
                [f.metric_duration(statistic="p99", period=FIVE_MINUTES) for f in fns],
            ),
        )
        if search_widgets:
            self.dashboard.add_widgets(*search_widgets)
        if failover_widgets:
            self.dashboard.add_widgets(*failover_widgets)

    def alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        periods: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
    ) -> cloudwatch.Alarm:
        """An alarm (missing data is fine: no traffic is no failure) that notifies the topic
        when it fires and when it clears."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm


def graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6)
