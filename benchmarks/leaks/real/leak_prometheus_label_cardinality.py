"""A prometheus_client counter labelled by user id: one child per user, forever."""

from prometheus_client import CollectorRegistry, Counter

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_prometheus_label_cardinality.py#labels",
    "root": "REQUESTS",
}

registry = CollectorRegistry()
REQUESTS = Counter("app_requests", "Requests served", ["user"], registry=registry)


def step(i: int) -> None:
    REQUESTS.labels(user=f"user-{i}").inc()  # leak-site: labels
