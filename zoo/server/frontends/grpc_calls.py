"""What every gRPC servicer method of zoo serve shares: errors as statuses, the memory budget, deadlines."""

from __future__ import annotations

import logging

from zoo.server.edge.memory_budget import MEMORY_PER_PROTO_BYTE, OverBudget
from zoo.server.plane.errors import Code, ServingError

log = logging.getLogger("zoo.server")

ERROR_MESSAGE_LIMIT = 1024  # ToGRPCStatus's kErrorMessageLimit


def serve(method):
    """Run a servicer method, turning ServingErrors into the call's status. A servicer with
    a memory budget reserves the request's decoding estimate first (`memory_budget`)."""

    def wrapper(self, request, context):
        budget = getattr(self, "budget", None)
        estimate = request.ByteSize() * MEMORY_PER_PROTO_BYTE if budget is not None else 0
        try:
            if estimate:
                try:
                    budget.reserve(estimate)
                except OverBudget as refused:
                    estimate = 0
                    raise ServingError(Code.RESOURCE_EXHAUSTED, refused.message) from None
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, limited(error.message))
        except Exception as error:  # noqa: BLE001  (the server keeps serving)
            log.exception("internal error in %s", method.__name__)
            context.abort(Code.INTERNAL, limited(f"Internal error: {type(error).__name__}: {error}"))
        finally:
            if estimate:
                budget.release(estimate)

    wrapper.__name__ = method.__name__
    return wrapper


def limited(message: str) -> str:
    """A status message cut at gRPC's limit, as TF Serving cuts it."""
    return message if len(message) <= ERROR_MESSAGE_LIMIT else message[:ERROR_MESSAGE_LIMIT] + "...TRUNCATED"


REQUEST_ID_KEY = "x-request-id"


def request_id(context):
    """What reads the call's x-request-id metadata (a function: the request log calls it only
    for a model that logs)."""
    def read() -> str | None:
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                return value if isinstance(value, str) else None
        return None

    return read


def deadline(context) -> float | None:
    """Seconds left to the call's deadline, or None without one."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else max(remaining, 0.0)
