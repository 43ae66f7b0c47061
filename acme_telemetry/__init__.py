"""ACME telemetry: the domain core (schema, simulator, KPIs, lake layout, Kafka settings).

It does not know where it runs: Lambda handlers and the local runner are thin adapters.
"""

__version__ = "0.1.0"
