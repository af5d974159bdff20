"""gRPC health checking (`grpc.health.v1.Health`), what Kubernetes' gRPC probes and service
meshes ask, from the maintained `grpcio-health-checking` servicer.

Services and their status:
- `""` (the server): SERVING when every configured model has an available version;
- each configured model name: SERVING while it has an available version;
- every one NOT_SERVING from the moment the server starts draining (SIGTERM), so that a
  load balancer stops sending before the port closes.

The statuses follow the model manager: a thread re-reads it every `interval` seconds
(a model loading, unloading or added by a config reload shows within that time; Watch
streams see each change).
"""

from __future__ import annotations

import threading

from grpc_health.v1 import health, health_pb2

from zoo.server.manager import ModelManager

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVER = ""


class HealthReporter:
    """Keeps a HealthServicer's statuses equal to the manager's models.

    Args:
        manager: whose models are reported.
        interval: seconds between looks at the manager.
    """

    def __init__(self, manager: ModelManager, interval: float = 0.25):
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self._manager = manager
        self._interval = interval
        self._reported: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zoo-health", daemon=True)

    def start(self) -> None:
        """Report the current statuses now, then follow the manager."""
        self.refresh()
        self._thread.start()

    def refresh(self) -> None:
        """Set every service's status from the manager's models now."""
        if self._stop.is_set():
            return
        availability = self._manager.availability()
        statuses = {name: SERVING if ready else NOT_SERVING for name, ready in availability.items()}
        statuses[SERVER] = SERVING if all(availability.values()) else NOT_SERVING
        for name in self._reported.keys() - statuses.keys():  # a model the config no longer has
            statuses[name] = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        for name, status in statuses.items():
            if self._reported.get(name) != status:
                self.servicer.set(name, status)
        self._reported = {k: v for k, v in statuses.items() if v != health_pb2.HealthCheckResponse.SERVICE_UNKNOWN}

    def drain(self) -> None:
        """Every service NOT_SERVING from now on (the server is going away)."""
        self._stop.set()
        self.servicer.enter_graceful_shutdown()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()
