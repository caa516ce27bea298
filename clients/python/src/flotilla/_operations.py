"""What `wait_operation` (sync and async) decides from one operation state."""

from __future__ import annotations

import random

import grpc

from flotilla.errors import OperationFailedError
from flotilla.v1 import operation_pb2

_FAILED = (
    operation_pb2.OPERATION_STATE_FAILED,
    operation_pb2.OPERATION_STATE_CANCELLED,
)

# Watch failures that mean "the stream dropped", not "the operation is unknown": open it again.
# (Only UNAVAILABLE: a code like INTERNAL or RESOURCE_EXHAUSTED would repeat on every reconnect.)
RECONNECT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


def outcome(operation: operation_pb2.Operation) -> operation_pb2.Operation | None:
    """The operation when it SUCCEEDED; None while it runs; raises when it ended otherwise."""
    if operation.state == operation_pb2.OPERATION_STATE_SUCCEEDED:
        return operation
    if operation.state in _FAILED:
        raise OperationFailedError(operation)
    return None


class ReconnectBackoff:
    """Full-jitter exponential delays between watch reconnects: 0.1 s doubling up to 5 s."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._ceiling = initial

    def reset(self) -> None:
        self._ceiling = self._initial

    def next_delay(self) -> float:
        delay = random.uniform(self._ceiling / 2, self._ceiling)
        self._ceiling = min(self._maximum, self._ceiling * 2)
        return delay
