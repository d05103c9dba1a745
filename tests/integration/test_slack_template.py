"""template.yaml's Slack notifications: a NoEcho parameter, every resource under its condition,
the API destination at Slack's rate, the rule's retries and dead-letter queue with its alarm.
(sam validate --lint and cfn-lint run on the whole template in test_template.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import expand_template, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
SLACK_RESOURCES = {"SlackConnection", "SlackDestination", "SlackNotifyRole", "SlackNotifyRule",
                   "SlackDeadLetterQueue", "SlackDeadLetterQueuePolicy", "SlackDeadLetterQueueAlarm"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_the_webhook_is_a_noecho_parameter_and_empty_turns_slack_off(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SlackWebhookUrl"]
    assert parameter["NoEcho"] is True and parameter["Default"] == ""
    assert template["Conditions"]["NotifySlack"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SlackWebhookUrl"}, ""]}]}
    slack = {k for k, v in template["Resources"].items() if v.get("Condition") == "NotifySlack"}
    assert slack == SLACK_RESOURCES
    # nothing else refers to them (a resource without the condition would fail when it is false)
    for name, resource in template["Resources"].items():
        if name not in SLACK_RESOURCES:
            assert not any(s in str(resource) for s in SLACK_RESOURCES), name
    assert template["Outputs"]["SlackDeadLetterQueueUrl"]["Condition"] == "NotifySlack"


def test_the_destination_posts_to_the_webhook_at_most_once_a_second(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    destination = resources["SlackDestination"]["Properties"]
    assert destination["InvocationEndpoint"] == {"Ref": "SlackWebhookUrl"}
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationRateLimitPerSecond"] == 1
    assert destination["ConnectionArn"] == {"Fn::GetAtt": ["SlackConnection", "Arn"]}
    connection = resources["SlackConnection"]["Properties"]
    assert connection["AuthorizationType"] == "API_KEY"  # a placeholder header: a webhook takes no auth
    assert set(connection["AuthParameters"]) == {"ApiKeyAuthParameters"}


def test_the_rule_retries_then_dead_letters_with_an_alarm(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    rule = resources["SlackNotifyRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["EventPattern"]["detail-type"] == ["Account Routed", "Routing SLA Breached", "Account Reassigned"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SlackDestination", "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 12, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SlackDeadLetterQueue", "Arn"]}}
    assert set(target["InputTransformer"]) == {"InputPathsMap", "InputTemplate"}
    # the role may invoke this destination only
    (policy,) = resources["SlackNotifyRole"]["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("events:InvokeApiDestination",
                                                            {"Fn::GetAtt": ["SlackDestination", "Arn"]})
    # the dead-letter queue: kept 14 days, encrypted, open to this rule only, alarmed
    queue = resources["SlackDeadLetterQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600 and queue["SqsManagedSseEnabled"] is True
    (grant,) = resources["SlackDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"} and grant["Action"] == "sqs:SendMessage"
    assert grant["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["SlackNotifyRule", "Arn"]}
    alarm = resources["SlackDeadLetterQueueAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SlackDeadLetterQueue",
                                                                                   "QueueName"]}}]
    assert (alarm["MetricName"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0)
    assert {"Ref": "AlarmTopic"} in alarm["AlarmActions"]
    assert "make replay QUEUE=SlackDeadLetterQueue" in alarm["AlarmDescription"]


def test_the_input_template_stays_inside_eventbridges_limits(template: dict[str, Any]) -> None:
    transformer = template["Resources"]["SlackNotifyRule"]["Properties"]["Targets"][0]["InputTransformer"]
    assert len(transformer["InputTemplate"]) <= 8192
    assert len(transformer["InputPathsMap"]) <= 100


def test_the_expanded_template_keeps_the_conditions(template: dict[str, Any]) -> None:
    expanded = expand_template(template, {"SlackWebhookUrl": "https://hooks.slack.com/services/T/B/X"})
    assert {k for k, v in expanded["Resources"].items() if v.get("Condition") == "NotifySlack"} == SLACK_RESOURCES
