"""The embedded default: the whole pipeline on one machine, on a real Kafka broker.

broker  the Apache Kafka broker subprocess (KRaft, jars from Maven Central)
writer  the Firehose-equivalent lake writer (consumer group acme-lake-writer)
query   DuckDB over the lake, as Athena sees it
feed    the dashboard's KPI consumer (consumer group acme-dashboard)
runner  wires them together for `python -m acme_telemetry local`
cli     the `local` and `query` subcommands
"""
