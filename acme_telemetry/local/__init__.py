"""The embedded default: the whole pipeline on one machine, on a real Kafka broker.

runner      `python -m acme_telemetry local`: RunOptions and run(opts), the services in order
supervisor  services in one ExitStack, one supervision loop, one stop path (signals, closed output)
services    the producer, lake writer, dashboard feed and server as supervised services
broker      the Apache Kafka broker subprocess (KRaft, jars from Maven Central); a service itself
producer    simulator -> Kafka (on AWS: the generator and producer Lambdas)
writer      the Firehose-equivalent lake writer (consumer group acme-lake-writer)
feed        the dashboard's KPI consumer (all partitions, from the end)
hub, web    the dashboard's WebSocket fan-out and the server of the page
query       DuckDB over the lake, as Athena sees it
"""
