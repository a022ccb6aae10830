"""Benchmark of the origin-request Lambda@Edge (issue 3 numbers), with baselines from the
same run.

    .venv/bin/python bench/bench_edge.py

Measures, against moto in server mode over HTTP on loopback:
- pass-through (S3 primary) handler time per event over 200k events: median <= 20 us;
- enqueue path per failover (distinct objects) including the HTTP round trip: median
  <= 15 ms, next to a bare boto3 send_message to the same server;
- 1 000 identical failovers in one container -> exactly 1 message;
- cold import of the module vs ``import boto3``, fresh subprocesses, interleaved:
  module <= boto3 + 20 ms;
- the fail-open budgets: SQS hanging (accepts, never answers) <= 1.5 s, cold and warm;
  SQS refusing connections <= 0.3 s (warm).
Exits 1 when a target is missed.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="ap-northeast-1",  # the edge's region; the queue lives in us-east-1
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL_SQS", "AWS_SESSION_TOKEN"):
    os.environ.pop(variable, None)

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from edge_origin_request import app  # noqa: E402
from edge_origin_request.backfill_queue import QueueSender  # noqa: E402
from edge_origin_request.failover import FailoverReporter  # noqa: E402
from edge_origin_request.recently_queued import RecentlyQueued  # noqa: E402
from tests.sample_events import load_event  # noqa: E402

PASS_THROUGH_EVENTS = 200_000
ENQUEUE_EVENTS = 300
MESSAGES_PER_QUEUE = 100  # moto's SQS slows down past a few hundred queued messages
IMPORT_RUNS = 15
AWS_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/{}"

TARGETS = {
    "pass-through median (us)": 20.0,
    "enqueue median (ms)": 15.0,
    "import excess over boto3 (ms)": 20.0,
    "hanging SQS, new client (s)": 1.5,
    "hanging SQS, warm client (s)": 1.5,
    "refused SQS, warm (s)": 0.3,
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fresh_container() -> None:
    app._REPORTER = FailoverReporter(QueueSender(), RecentlyQueued())


def failover_event(queue_url: str, uri: str = "/img/a%20b.jpg") -> Any:
    event = load_event("edge_failover_get")
    request = event["Records"][0]["cf"]["request"]
    request["origin"]["custom"]["customHeaders"]["x-edgefill-queue"][0]["value"] = queue_url
    request["uri"] = uri
    return event


def bench_pass_through() -> tuple[float, float, float]:
    event = load_event("edge_s3_origin")
    handler = app.handler
    expected = load_event("edge_s3_origin")["Records"][0]["cf"]["request"]

    def bare(event: Any, context: Any) -> Any:  # baseline: the lookup every handler does
        return event["Records"][0]["cf"]["request"]

    clock = time.perf_counter_ns
    results = {}
    for name, function in (("bare", bare), ("handler", handler)):
        samples = []
        for _ in range(PASS_THROUGH_EVENTS):
            started = clock()
            function(event, None)
            samples.append(clock() - started)
        results[name] = samples
    assert handler(event, None) == expected, "pass-through changed the request"
    handler_us = [ns / 1000 for ns in results["handler"]]
    bare_median = statistics.median(results["bare"]) / 1000
    return statistics.median(handler_us), percentile(handler_us, 0.99), bare_median


def bench_enqueue(sqs: Any) -> tuple[float, float, float, float]:
    fresh_container()
    handler_ms: list[float] = []
    bare_ms: list[float] = []
    # Warm both clients (client creation is a cold-start cost, not the enqueue path).
    warm_url = sqs.create_queue(QueueName="warm")["QueueUrl"]
    started = time.perf_counter()
    app.handler(failover_event(AWS_QUEUE.format("warm"), "/warm"), None)
    first_ms = (time.perf_counter() - started) * 1000
    sqs.send_message(QueueUrl=warm_url, MessageBody="{}")
    for batch in range(ENQUEUE_EVENTS // MESSAGES_PER_QUEUE):
        name = f"enqueue-{batch}"
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        for index in range(MESSAGES_PER_QUEUE):
            event = failover_event(AWS_QUEUE.format(name), f"/objects/{batch}/{index}.jpg")
            started = time.perf_counter()
            app.handler(event, None)
            handler_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            sqs.send_message(QueueUrl=queue_url, MessageBody='{"v":1,"type":"backfill"}')
            bare_ms.append((time.perf_counter() - started) * 1000)
        sent = int(
            sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        assert sent == 2 * MESSAGES_PER_QUEUE, f"{name} holds {sent} messages"
    return (
        statistics.median(handler_ms),
        percentile(handler_ms, 0.99),
        statistics.median(bare_ms),
        first_ms,
    )


def bench_identical(sqs: Any) -> int:
    fresh_container()
    queue_url = sqs.create_queue(QueueName="identical")["QueueUrl"]
    for _ in range(1000):
        app.handler(failover_event(AWS_QUEUE.format("identical")), None)
    response = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(response["Attributes"]["ApproximateNumberOfMessages"])


def import_seconds(statement: str) -> float:
    code = (
        "import time; started = time.perf_counter(); "
        f"{statement}; print(time.perf_counter() - started)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return float(output.strip())


def bench_imports() -> tuple[float, float]:
    module, boto = [], []
    for _ in range(IMPORT_RUNS):  # interleaved, so machine noise hits both alike
        module.append(import_seconds("import edge_origin_request.app"))
        boto.append(import_seconds("import boto3"))
    return statistics.median(module) * 1000, statistics.median(boto) * 1000


class SilentServer:
    """Accepts connections and never answers: a hanging SQS."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for held in self.held:
            held.close()


def timed(event: Any) -> float:
    started = time.perf_counter()
    app.handler(event, None)
    return time.perf_counter() - started


def bench_budgets(moto_url: str) -> tuple[float, float, float]:
    hanging = SilentServer()
    try:
        os.environ["AWS_ENDPOINT_URL"] = hanging.url
        fresh_container()
        cold = timed(failover_event(AWS_QUEUE.format("hang-1")))
        warm = timed(failover_event(AWS_QUEUE.format("hang-2")))  # another queue: not paused
    finally:
        hanging.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refusing = f"http://127.0.0.1:{probe.getsockname()[1]}"
    os.environ["AWS_ENDPOINT_URL"] = refusing
    fresh_container()
    timed(failover_event(AWS_QUEUE.format("refused-warm-up")))
    refused = timed(failover_event(AWS_QUEUE.format("refused")))
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    return cold, warm, refused


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_url)
    # The handler's JSON log lines would drown the report; keep them off the terminal.
    real_stdout = sys.stdout
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - restored below
        pass_median, pass_p99, bare_median = bench_pass_through()
        enqueue_median, enqueue_p99, send_median, first_ms = bench_enqueue(sqs)
        identical = bench_identical(sqs)
        hang_cold, hang_warm, refused = bench_budgets(moto_url)
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
        server.stop()
    module_ms, boto_ms = bench_imports()

    figures = {
        "pass-through median (us)": pass_median,
        "enqueue median (ms)": enqueue_median,
        "import excess over boto3 (ms)": module_ms - boto_ms,
        "hanging SQS, new client (s)": hang_cold,
        "hanging SQS, warm client (s)": hang_warm,
        "refused SQS, warm (s)": refused,
    }
    print(f"pass-through: median {pass_median:.2f} us, p99 {pass_p99:.2f} us over "
          f"{PASS_THROUGH_EVENTS} events (bare event lookup {bare_median:.2f} us, "
          f"ratio {pass_median / bare_median:.1f}x)")  # fmt: skip
    print(f"enqueue: median {enqueue_median:.2f} ms, p99 {enqueue_p99:.2f} ms over "
          f"{ENQUEUE_EVENTS} failovers (bare boto3 send_message {send_median:.2f} ms, "
          f"ratio {enqueue_median / send_median:.2f}x)")  # fmt: skip
    print(f"first failover of a container (SQS client creation included): {first_ms:.1f} ms")
    print(f"1000 identical failovers -> {identical} message(s)")
    print(f"cold import: edge_origin_request.app {module_ms:.1f} ms, boto3 {boto_ms:.1f} ms "
          f"(median of {IMPORT_RUNS} fresh interpreters each, "
          f"excess {module_ms - boto_ms:+.1f} ms)")  # fmt: skip
    print(f"hanging SQS: new client {hang_cold:.3f} s, warm client {hang_warm:.3f} s; "
          f"refused SQS (warm): {refused * 1000:.1f} ms")  # fmt: skip
    failed = [name for name, value in figures.items() if value > TARGETS[name]]
    if identical != 1:
        failed.append("1000 identical -> 1 message")
    for name, value in figures.items():
        verdict = "ok" if value <= TARGETS[name] else "MISSED"
        print(f"  {verdict:6} {name}: {value:.3f} (target <= {TARGETS[name]})")
    print(f"  {'ok' if identical == 1 else 'MISSED':6} 1000 identical -> 1 message: {identical}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
