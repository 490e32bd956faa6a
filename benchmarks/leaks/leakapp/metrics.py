"""A metrics registry singleton whose label set is unbounded."""

from __future__ import annotations


class Sample:
    def __init__(self, labels: dict[str, str], values: list[float]) -> None:
        self.labels = labels
        self.values = values


class MetricsRegistry:
    def __init__(self) -> None:
        self._samples: dict[str, Sample] = {}

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = name + repr(sorted(labels.items()))
        sample = self._samples.get(key)
        if sample is None:
            sample = Sample(labels, [0.0] * 64)  # leak-site: metrics
            self._samples[key] = sample
        sample.values[0] = value


registry = MetricsRegistry()


def track_request(path: str, user_id: int, seconds: float) -> None:
    registry.observe("latency", seconds, path=path, user=str(user_id))
