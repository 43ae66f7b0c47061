"""The embedded default: the whole pipeline on one machine, on a real Kafka broker.

runner      `python -m acme_telemetry local`: RunOptions and run(opts), the services in order
supervisor  services in one ExitStack, one supervision loop, one stop path (signals, closed output)
proc        a service run as a child process: JSON-lines channel, parent-death signal, watchdog pipe
child       `python -m acme_telemetry.local.child ROLE`: the producer, writer and dashboard processes
statedir    one run per state folder (flock + run.json), so a live run and a stale broker differ
guard       keeps a child without its own watchdog (the JVM) from outliving us where there is no
            parent-death signal (macOS)
services    the dashboard server and feed as thread services (inside the dashboard process)
broker      the Apache Kafka broker subprocess (KRaft, jars from Maven Central); a service itself
producer    simulator -> Kafka (on AWS: the generator and producer Lambdas)
writer      the Firehose-equivalent lake writer (consumer group acme-lake-writer)
feed        the dashboard's KPI consumer (all partitions, from the end)
hub, web    the dashboard's WebSocket fan-out and the server of the page
query       DuckDB over the lake, as Athena sees it
"""
