"""What an operator gets after `cdk deploy`: access logs, traces, alarms that page someone, a
dashboard over the gateway's own metrics, and Bedrock limited to the configured models.

Verified by synthesis (the CloudFormation that would deploy). That the `Lockgate` metrics exist
under these names and dimensions (per `alias`, plus the all-aliases series the fallback alarm
reads) depends on the functions' EMF emitters, known here only by reading them.
"""

from __future__ import annotations

import json
from typing import Any

METRICS = {
    "Requests", "Errors", "InputTokens", "OutputTokens", "CostUSD", "CacheHits",
    "CacheSavingsUSD", "Fallbacks", "FirstTokenLatency", "LimitRejections",
}  # fmt: skip


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


def alarms(template: Any) -> dict[str, dict[str, Any]]:
    return {
        logical_id: alarm["Properties"]
        for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
    }


def metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {
        query["MetricStat"]["Metric"]["MetricName"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


def test_stage_writes_json_access_logs_to_a_log_group_kept_a_month(template: Any) -> None:
    ((_, stage),) = resources(template, "AWS::ApiGateway::Stage").items()
    props = stage["Properties"]
    fields = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "apiKeyId", "status", "latencyMs", "integrationLatencyMs"} <= set(fields)
    assert fields["apiKeyId"] == "$context.identity.apiKeyId"
    destination = json.dumps(props["AccessLogSetting"]["DestinationArn"])
    (log_group,) = [
        group
        for logical_id, group in resources(template, "AWS::Logs::LogGroup").items()
        if f'"Ref": "{logical_id}"' in destination
    ]
    assert log_group["Properties"]["RetentionInDays"] == 30
    (settings,) = props["MethodSettings"]
    assert settings["MetricsEnabled"] is True
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    assert props["TracingEnabled"] is True
    # Execution logs go to API Gateway's own group name, made here with a retention.
    execution = [
        g["Properties"]
        for g in resources(template, "AWS::Logs::LogGroup").values()
        if "API-Gateway-Execution-Logs_" in json.dumps(g["Properties"].get("LogGroupName"))
    ]
    assert [g["RetentionInDays"] for g in execution] == [30]
    assert '"/prod"' in json.dumps(execution[0]["LogGroupName"])
    # Stage logging needs the account's API Gateway role; it is set, and kept on teardown.
    ((_, account),) = resources(template, "AWS::ApiGateway::Account").items()
    assert "CloudWatchRoleArn" in account["Properties"]


def test_every_function_traces_and_logs_to_a_group_with_retention(template: Any) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    functions = resources(template, "AWS::Lambda::Function")
    ours = {i: f for i, f in functions.items() if not i.startswith("BucketNotificationsHandler")}
    assert {i.rstrip("0123456789ABCDEF") for i in ours} == {
        "GatewayFunction",
        "OrchestrateFunction",
        "DocumentsFunction",
        "FailoverAttempt",
    }
    for fn in ours.values():
        props = fn["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        group = groups[props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == 30


def test_alarms_cover_api_functions_dlq_fallbacks_and_search(template: Any) -> None:
    found = alarms(template)
    by_metric: dict[str, int] = {}
    for alarm in found.values():
        for name in metric_names(alarm):
            by_metric[name] = by_metric.get(name, 0) + 1
    assert by_metric["5XXError"] == 1
    assert by_metric["Errors"] == 3 and by_metric["Invocations"] == 3  # one rate per function
    assert by_metric["Throttles"] == 4  # and the fail-over's attempt function
    assert by_metric["ExecutionThrottled"] == 1  # the fail-over machine's Express quota
    assert by_metric["ApproximateNumberOfMessagesVisible"] == 1
    assert by_metric["Fallbacks"] == 1 and by_metric["Requests"] == 1
    assert {"ClusterStatus.red", "ClusterStatus.yellow", "FreeStorageSpace"} <= set(by_metric)


def test_fallback_rate_is_fallbacks_over_requests_of_the_lockgate_namespace(template: Any) -> None:
    (alarm,) = [a for a in alarms(template).values() if "Fallbacks" in metric_names(a)]
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert "fallbacks / requests" in expression["Expression"]
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert metric["Namespace"] == "Lockgate"
            assert "Dimensions" not in metric  # the all-aliases series


def test_every_alarm_notifies_the_encrypted_topic_both_ways(template: Any) -> None:
    ((topic_id, topic),) = resources(template, "AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    found = alarms(template)
    assert len(found) >= 12
    for logical_id, alarm in found.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["OKActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"]
    assert resources(template, "AWS::SNS::Subscription") == {}


def test_alarm_email_subscribes_and_serverless_has_no_cluster_alarms(variant: Any) -> None:
    variant.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    names = set().union(*(metric_names(a) for a in alarms(variant).values()))
    assert "ClusterStatus.red" not in names and "Fallbacks" in names


def test_dashboard_shows_the_gateway_metrics_and_the_aws_ones(template: Any) -> None:
    ((_, dashboard),) = resources(template, "AWS::CloudWatch::Dashboard").items()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in METRICS:
        assert f"MetricName={name}" in body.replace("\\", "").replace('"', ""), name
    assert "SEARCH('{Lockgate,alias}" in body
    for aws in ("5XXError", "Throttles", "ApproximateNumberOfMessagesVisible", "FreeStorageSpace"):
        assert aws in body, aws
    # The fail-over's runs, by outcome, and its attempt function beside the others.
    for runs in ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionTime"):
        assert runs in body, runs
    (attempt_id,) = [i for i in resources(template, "AWS::Lambda::Function") if "Attempt" in i]
    assert attempt_id in body


def test_bedrock_is_granted_only_for_the_tier_models(template: Any) -> None:
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "bedrock:" in json.dumps(statement["Action"])
    ]
    # Two functions call models: orchestrate (streams) and the fail-over's attempt function.
    assert len(statements) == 2
    for statement in statements:
        granted = json.dumps(statement["Resource"])
        for model in ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"):
            assert f"foundation-model/{model}" in granted
        assert granted.count("foundation-model/") == 3
        assert "foundation-model/*" not in granted and 'inference-profile/*"' not in granted
