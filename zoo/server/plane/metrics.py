"""Prometheus metrics under TF Serving's names, labels and buckets, in the text exposition
format TF Serving serves at /monitoring/prometheus/metrics (util/prometheus_exporter.cc).

    :tensorflow:serving:request_count{model_name,status}            every request, any outcome
    :tensorflow:serving:request_latency{model_name,API,entrypoint}  microseconds, successful
                                                                    requests only (as TF Serving)

`API` is what TF Serving records: "Predict", "Classify", "Regress" over gRPC, and the
verb of the URL ("predict", "classify", "regress") over REST. The zoo adds its request log's
counters (TF Serving's open-source build has no log collector):

    :tensorflow:serving:request_log_count{model_name}                records written
    :tensorflow:serving:request_log_dropped_count{model_name,reason} queue_full, write_failed...
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
REQUEST_LOG_COUNT = ":tensorflow:serving:request_log_count"
REQUEST_LOG_DROPPED = ":tensorflow:serving:request_log_dropped_count"
# monitoring::Buckets::Exponential(10, 1.8, 33): 10 us * 1.8^i, about 20 minutes at the top.
BUCKETS = tuple(10 * 1.8**i for i in range(33))


class Metrics:
    """Request counts and latency histograms, rendered for Prometheus."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._histograms: dict[tuple[str, str, str], list[int]] = {}
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self._logged: dict[str, int] = defaultdict(int)
        self._dropped: dict[tuple[str, str], int] = defaultdict(int)

    def logged(self, model: str) -> None:
        """Count one request-log record written."""
        with self._lock:
            self._logged[model] += 1

    def log_dropped(self, model: str, reason: str) -> None:
        """Count one request-log record dropped, and why."""
        with self._lock:
            self._dropped[(model, reason)] += 1

    def count(self, model: str, status: str) -> None:
        """Count one request of `model` with its status."""
        with self._lock:
            self._counts[(model, status)] += 1

    def latency(self, model: str, api: str, entrypoint: str, seconds: float) -> None:
        """Record one request's latency in the histogram."""
        micros = seconds * 1e6
        key = (model, api, entrypoint)
        with self._lock:
            buckets = self._histograms.setdefault(key, [0] * (len(BUCKETS) + 1))
            buckets[bisect.bisect_left(BUCKETS, micros)] += 1
            self._sums[key] += micros

    def render(self) -> str:
        """The metrics in Prometheus's text format."""
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(f"{REQUEST_COUNT}{{{_labels(model_name=model, status=status)}}} {count}")
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), buckets in sorted(self._histograms.items()):
                base = _labels(model_name=model, API=api, entrypoint=entrypoint)
                cumulative = 0
                for bound, count in zip((*BUCKETS, "+Inf"), buckets):
                    cumulative += count
                    limit = bound if isinstance(bound, str) else f"{bound:g}"
                    lines.append(f'{REQUEST_LATENCY}_bucket{{{base},le="{limit}"}} {cumulative}')
                lines.append(f"{REQUEST_LATENCY}_sum{{{base}}} {self._sums[(model, api, entrypoint)]:g}")
                lines.append(f"{REQUEST_LATENCY}_count{{{base}}} {cumulative}")
            if self._logged or self._dropped:
                lines.append(f"# TYPE {REQUEST_LOG_COUNT} counter")
                lines += [f"{REQUEST_LOG_COUNT}{{{_labels(model_name=m)}}} {n}"
                          for m, n in sorted(self._logged.items())]
                lines.append(f"# TYPE {REQUEST_LOG_DROPPED} counter")
                lines += [f"{REQUEST_LOG_DROPPED}{{{_labels(model_name=m, reason=r)}}} {n}"
                          for (m, r), n in sorted(self._dropped.items())]
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{escape(value)}"' for key, value in labels.items())
