"""Prometheus metrics: request counts and latency histograms by model, API, entry point and
status, in the text exposition format TF Serving serves at /monitoring/prometheus/metrics."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

# TF Serving's metric names; labels: model_name, API (predict, classify...), entrypoint
# (REST or GRPC) and status (OK, INVALID_ARGUMENT...).
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# Microseconds, like TF Serving's latency histograms.
BUCKETS = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
           500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000)


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = defaultdict(int)
        self._histograms: dict[tuple, list[int]] = {}
        self._sums: dict[tuple, float] = defaultdict(float)

    def observe(self, model: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        micros = seconds * 1e6
        count_key = (model, api, entrypoint, status)
        latency_key = (model, api, entrypoint)
        with self._lock:
            self._counts[count_key] += 1
            buckets = self._histograms.setdefault(latency_key, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, micros)] += 1
            self._sums[latency_key] += micros

    def render(self) -> str:
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        with self._lock:
            for (model, api, entrypoint, status), count in sorted(self._counts.items()):
                labels = _labels(model_name=model, API=api, entrypoint=entrypoint, status=status)
                lines.append(f"{REQUEST_COUNT}{{{labels}}} {count}")
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), buckets in sorted(self._histograms.items()):
                base = _labels(model_name=model, API=api, entrypoint=entrypoint)
                cumulative = 0
                for bound, count in zip((*BUCKETS, "+Inf"), buckets):
                    cumulative += count
                    lines.append(f'{REQUEST_LATENCY}_bucket{{{base},le="{bound}"}} {cumulative}')
                lines.append(f"{REQUEST_LATENCY}_sum{{{base}}} {self._sums[(model, api, entrypoint)]:.1f}")
                lines.append(f"{REQUEST_LATENCY}_count{{{base}}} {cumulative}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{escape(value)}"' for key, value in labels.items())
