"""The REST candidates of `python -m bench edge`, one per process: the zoo's ASGI application
(`zoo.server.edge.rest_app.RestApp`, the same routes, JSON and model calls as `zoo serve`) under a
server library other than the one `zoo serve` uses.

    python -m bench.edge_servers CANDIDATE MODELS_CONFIG PORT

CANDIDATE: uvicorn-h11 (uvicorn's pure-Python parser on asyncio), hypercorn (h11, asyncio),
granian (Rust hyper, embedded on this process's asyncio loop). `zoo serve` itself (uvicorn
with httptools on uvloop) and the thread-a-connection server before it are started as
`zoo serve` processes by the bench.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

CANDIDATES = ("uvicorn-h11", "hypercorn", "granian")


def main(argv=None) -> int:
    """Load the models, then serve REST with the named candidate until SIGTERM."""
    candidate, config_file, port = (argv or sys.argv[1:])[:3]
    if candidate not in CANDIDATES:
        raise SystemExit(f"unknown candidate {candidate}; one of {', '.join(CANDIDATES)}")
    from zoo.server.app import ZooServer
    from zoo.server.config import load_model_config_file
    from zoo.tensorflow_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    server = ZooServer(load_model_config_file(Path(config_file)), grpc_port=0, rest_port=None, poll_seconds=0).start()
    app = server._rest_api  # noqa: SLF001  (the bench serves the very application zoo serve serves)
    asyncio.run(_serve(candidate, app, int(port)))
    server.stop()
    return 0


async def _serve(candidate: str, app, port: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if candidate == "uvicorn-h11":
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http="h11", loop="asyncio",
                                               lifespan="off", log_config=None, access_log=False, backlog=2048))
        task = asyncio.create_task(server.serve())
        await stop.wait()
        server.should_exit = True
        await task
    elif candidate == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.backlog = 2048
        config.accesslog = config.errorlog = None
        await serve(app, config, shutdown_trigger=stop.wait)
    else:
        from granian.constants import Interfaces
        from granian.server.embed import Server

        server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, backlog=2048,
                        log_enabled=False)
        task = asyncio.create_task(server.serve())
        await stop.wait()
        server.stop()
        await task


if __name__ == "__main__":
    sys.exit(main())
