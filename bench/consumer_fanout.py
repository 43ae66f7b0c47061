"""The consumer Lambda's fan-out against a local stand-in for the API Gateway management API.

The stand-in is an HTTP server on 127.0.0.1 that answers `POST /@connections/{id}` (the
management API's PostToConnection) after LATENCY_MS (15 ms, a realistic in-region
round trip), and 410 GoneException for connections that are gone. The Lambda's own code
(lambdas/consumer/handler.py: broadcast, management_api) drives it through boto3 and
botocore, so signing, HTTP pooling and the thread pool are all in the measurement; the
connections table is an in-memory stand-in with DynamoDB's scan and batch_writer.

Rows: the time to serve N connections (1,000; 200 with --quick) with the batch's messages
(a kpi state and a feed), pooled (the handler as shipped) against one-after-another (the
old loop, a pool of 1); the target is well inside one 5 s batching window.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LATENCY_MS = 15.0
BATCH_WINDOW_S = 5.0


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        time.sleep(LATENCY_MS / 1000)
        with _Api.lock:
            _Api.posts += 1
        cid = self.path.rsplit("/", 1)[-1]
        if cid.startswith("gone"):
            body = b'{"message": "GoneException"}'
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
        else:
            body = b""
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Table:
    def __init__(self, ids: list[str]) -> None:
        self.ids, self.deleted = ids, []

    def scan(self, **_: Any) -> dict[str, Any]:
        return {"Items": [{"connectionId": i} for i in self.ids]}

    def batch_writer(self) -> _Table:
        return self

    def __enter__(self) -> _Table:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def delete_item(self, Key: dict[str, str]) -> None:  # noqa: N803 - boto3's name
        self.deleted.append(Key["connectionId"])


def _handler() -> Any:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bench")
    spec = importlib.util.spec_from_file_location("consumer_handler_bench", ROOT / "lambdas" / "consumer" / "handler.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _messages() -> list[bytes]:
    import orjson

    from acme_telemetry import kpis, protocol
    from acme_telemetry.simulator import SimConfig, iter_records

    events = [orjson.loads(v) for _, v in iter_records(3000, SimConfig(seed=1, concurrent_viewers=2000))]
    states, _ = kpis.split_by_window(events, 5000)
    state = states[max(states)]
    frames = protocol.kpi_frames(state, "bench")
    return frames + [protocol.encode(protocol.feed_message([e for e in events if kpis.is_notable(e)]))]


def _serve(port_out: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 200 if quick else 1000
    # the stand-in runs in its own process, so its work does not share the Lambda's GIL
    ctx = multiprocessing.get_context("spawn")
    port_q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(port_q,), daemon=True)
    proc.start()
    endpoint = f"http://127.0.0.1:{port_q.get(timeout=30)}"
    try:
        consumer = _handler()
        api = consumer.management_api(endpoint)
        messages = _messages()
        ids = [f"c{i}" for i in range(n - n // 100)] + [f"gone{i}" for i in range(n // 100)]
        consumer.broadcast(messages, _Table(ids[:50]), api)  # warm the connection pool
        rows = []
        timings = {}
        for label, concurrency in (("pooled", consumer.BROADCAST_CONCURRENCY), ("sequential", 1)):
            if label == "sequential" and not quick:
                sample = ids[:100]  # the old loop: 100 connections, scaled to n (it is linear)
            else:
                sample = ids
            table = _Table(list(sample))
            t0 = time.perf_counter()
            stats = consumer.broadcast(messages, table, api, concurrency=concurrency)
            dt = (time.perf_counter() - t0) * len(ids) / len(sample)
            assert stats["gone"] == sum(1 for i in sample if i.startswith("gone")) == len(table.deleted)
            timings[label] = dt
            rows.append(
                {
                    "benchmark": "consumer_fanout",
                    "metric": f"{label} broadcast, {n} connections x {len(messages)} msgs",
                    "value": dt,
                    "unit": "s",
                    "note": f"concurrency {concurrency}, {LATENCY_MS:.0f} ms per PostToConnection"
                    + ("" if len(sample) == len(ids) else f" (measured on {len(sample)}, linear)"),
                }
            )
        rows.append(
            {
                "benchmark": "consumer_fanout",
                "metric": "pooled share of one 5 s batching window",
                "value": 100 * timings["pooled"] / BATCH_WINDOW_S,
                "unit": "%",
                "note": f"target: well inside; sequential/pooled = {timings['sequential'] / timings['pooled']:.1f}x",
            }
        )
        return rows
    finally:
        proc.terminate()
        proc.join(10)


if __name__ == "__main__":
    from bench.run import format_table

    print(format_table(run(quick=False)))
