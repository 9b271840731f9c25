"""A real OTLP/HTTP receiver on loopback: what a collector would see of Cairn's export.

``POST /v1/traces`` and ``/v1/metrics`` bodies are decoded with ``opentelemetry-proto``
(the collector's own message definitions) into plain records the tests read. ``stop``
closes the socket, so later exports meet a refused connection, as with a collector down.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}


def value_of(value: AnyValue) -> Any:
    """An OTLP attribute value as Python."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if which is None:
        return None
    return getattr(value, which)


def attributes_of(pairs: Any) -> dict[str, Any]:
    """OTLP key-values as a dict."""
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass
class Span:
    """One received span."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    status: str
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    start_ns: int
    end_ns: int
    resource: dict[str, Any]


@dataclass
class Received:
    """Everything the receiver took in so far."""

    spans: list[Span] = field(default_factory=list)
    metrics: dict[str, list[Any]] = field(default_factory=dict)
    requests: int = 0


class Receiver:
    """Start with ``Receiver()``; ``url`` is the base to put in OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self.received = Received()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    receiver._traces(body)
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._metrics(body)
                    answer = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def _traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = [
            Span(
                name=span.name,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                kind=KINDS.get(span.kind, "unspecified"),
                status=STATUS[span.status.code],
                status_message=span.status.message,
                attributes=attributes_of(span.attributes),
                events=[(e.name, attributes_of(e.attributes)) for e in span.events],
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
                resource=attributes_of(resource_spans.resource.attributes),
            )
            for resource_spans in request.resource_spans
            for scope in resource_spans.scope_spans
            for span in scope.spans
        ]
        with self._changed:
            self.received.spans.extend(spans)
            self.received.requests += 1
            self._changed.notify_all()

    def _metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        with self._changed:
            for resource_metrics in request.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        self.received.metrics.setdefault(metric.name, []).append(metric)
            self.received.requests += 1
            self._changed.notify_all()

    def spans_of_trace(self, trace_id: str) -> list[Span]:
        """The spans received for one trace."""
        with self._changed:
            return [s for s in self.received.spans if s.trace_id == trace_id]

    def wait_for_spans(self, count: int, timeout_s: float = 20.0) -> list[Span]:
        """Block until at least ``count`` spans arrived (or fail after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.received.spans) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received.spans)} spans received, expected {count}"
                    )
                self._changed.wait(left)
            return list(self.received.spans)

    def stop(self) -> None:
        """Close the socket: later exports meet a refused connection."""
        if self.running:
            self.running = False
            self._server.shutdown()
            self._server.server_close()
