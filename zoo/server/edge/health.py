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

from zoo.server.plane.manager import ModelManager

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVER = ""


class DrainingHealthServicer(health.HealthServicer):
    """The maintained servicer, whose Watch streams end once they have said NOT_SERVING at
    the drain: open streams (a mesh's, a load balancer's) would otherwise hold gRPC's stop for
    its whole grace period, since the stop waits for every call, streams included. Watch stays
    non-blocking (the base class's mode: a stream holds no thread); each stream's response
    callback is kept here so that `drain` can end it (a None response ends a stream)."""

    def __init__(self):
        super().__init__(experimental_non_blocking=True)
        self._streams: set = set()
        self._streams_lock = threading.Lock()

    def Watch(self, request, context, send_response_callback=None):  # noqa: D102, N802  (gRPC's name)
        if send_response_callback is not None:
            with self._streams_lock:
                self._streams.add(send_response_callback)
            context.add_callback(lambda: self._forget(send_response_callback))
        return super().Watch(request, context, send_response_callback)

    def drain(self) -> None:
        """Every service NOT_SERVING, said on every open stream, which then ends."""
        self.enter_graceful_shutdown()
        with self._streams_lock:
            streams, self._streams = list(self._streams), set()
        for send_response_callback in streams:
            send_response_callback(None)

    def _forget(self, send_response_callback) -> None:
        with self._streams_lock:
            self._streams.discard(send_response_callback)


class HealthReporter:
    """Keeps a HealthServicer's statuses equal to the manager's models.

    Args:
        manager: whose models are reported.
        interval: seconds between looks at the manager.
    """

    def __init__(self, manager: ModelManager, interval: float = 0.25):
        self.servicer = DrainingHealthServicer()
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
        """Every service NOT_SERVING from now on (the server is going away); each Watch
        stream ends after saying so."""
        self._stop.set()
        self.servicer.drain()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.refresh()
