"""A prometheus_client histogram labelled by method and status (a small fixed set)."""

from prometheus_client import CollectorRegistry, Histogram

EXPECTED = {"leak": False}

registry = CollectorRegistry()
LATENCY = Histogram("app_latency_seconds", "Latency", ["method", "status"], registry=registry)
METHODS = ("GET", "POST", "PUT", "DELETE")


def step(i: int) -> None:
    LATENCY.labels(method=METHODS[i % 4], status=str(200 + (i % 3))).observe(0.001 * (i % 50))
