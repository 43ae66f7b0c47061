"""HealthDashboard: the pipeline's health on one CloudWatch dashboard.

Left to right, as data flows: generator and producer (invocations, errors, events
generated), MSK (CPU and data-log disk per broker), Firehose (delivery freshness and
successes), the KPI consumer (its event source mapping's offset lag, errors, broadcasts),
and the WebSocket API (connections and messages), then the app's alarms.

Every metric is named by a literal (function names, the cluster name, the stream name,
the API id of this stack): the dashboard imports nothing from other stacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

PERIOD = cdk.Duration.minutes(5)


def _lambda(metric: str, function_name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/Lambda",
        metric_name=metric,
        dimensions_map={"FunctionName": function_name},
        statistic=statistic,
        period=PERIOD,
        label=f"{function_name} {metric}",
    )


def _emf(namespace: str, service: str, metric: str) -> cloudwatch.Metric:
    """A Powertools EMF metric (dimension `service` = the function folder's name)."""
    return cloudwatch.Metric(
        namespace=namespace, metric_name=metric, dimensions_map={"service": service}, statistic="Sum", period=PERIOD, label=metric
    )


class HealthDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        dashboard_name: str,
        metrics_namespace: str,
        generator_function: str,
        producer_function: str,
        cluster_name: str,
        broker_count: int,
        delivery_stream: str,
        consumer: lambda_.IFunction,
        api_id: str,
        stage_name: str,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id)
        region = cdk.Stack.of(self).region
        brokers = [str(i) for i in range(1, broker_count + 1)]

        def msk(metric: str) -> list[cloudwatch.IMetric]:
            return [
                cloudwatch.Metric(
                    namespace="AWS/Kafka",
                    metric_name=metric,
                    dimensions_map={"Cluster Name": cluster_name, "Broker ID": b},
                    statistic="Maximum",
                    period=PERIOD,
                    label=f"broker {b}",
                )
                for b in brokers
            ]

        def firehose(metric: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Firehose",
                metric_name=metric,
                dimensions_map={"DeliveryStreamName": delivery_stream},
                statistic=statistic,
                period=PERIOD,
                label=metric,
            )

        def api(metric: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=metric,
                dimensions_map={"ApiId": api_id, "Stage": stage_name},
                statistic="Sum",
                period=PERIOD,
                label=metric,
            )

        consumer_name = consumer.function_name
        self.widgets: dict[str, cloudwatch.IWidget] = {
            "generator": cloudwatch.GraphWidget(
                title="Generator and producer: invocations and errors",
                left=[
                    _lambda("Invocations", generator_function),
                    _lambda("Errors", generator_function),
                    _lambda("Invocations", producer_function),
                    _lambda("Errors", producer_function),
                ],
                right=[_emf(metrics_namespace, "generator", "EventsGenerated")],
            ),
            "msk_cpu": cloudwatch.GraphWidget(title="MSK: CPU (user %) per broker", left=msk("CpuUser")),
            "msk_disk": cloudwatch.GraphWidget(title="MSK: data log disk used (%) per broker", left=msk("KafkaDataLogsDiskUsed")),
            "firehose": cloudwatch.GraphWidget(
                title="Firehose to the lake: freshness (s) and successes",
                left=[firehose("DeliveryToS3.DataFreshness", "Maximum")],
                right=[firehose("DeliveryToS3.Success", "Average")],
            ),
            "consumer": cloudwatch.GraphWidget(
                title="KPI consumer: offset lag, errors, broadcasts",
                left=[_lambda("OffsetLag", consumer_name, "Maximum")],
                right=[_lambda("Errors", consumer_name), _emf(metrics_namespace, "consumer", "Broadcasts")],
            ),
            "websocket": cloudwatch.GraphWidget(
                title="WebSocket: connections and messages", left=[api("ConnectCount"), api("MessageCount")]
            ),
        }
        rows: list[list[cloudwatch.IWidget]] = [
            [self.widgets["generator"], self.widgets["msk_cpu"], self.widgets["msk_disk"]],
            [self.widgets["firehose"], self.widgets["consumer"], self.widgets["websocket"]],
        ]
        if alarms:
            rows.append([cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24)])
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, widgets=rows)
        self.url = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={dashboard_name}"
