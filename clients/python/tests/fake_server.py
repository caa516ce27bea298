"""A tiny in-process gRPC server with scripted answers, for the retry, error and wait tests.

Each scripted answer is either a response message or a `Failure` (code, message, google.rpc
details), sent as grpc-status-details-bin exactly like the Flotilla server does. The server
records every call's arrival time and metadata: the tests' expected answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from flotilla.v1 import (
    cluster_service_pb2,
    cluster_service_pb2_grpc,
    operation_pb2,
    operation_service_pb2,
    operation_service_pb2_grpc,
)


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    details: Sequence[Message] = ()


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def error_info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain="flotilla.dev", metadata=metadata)


def bad_request(*fields: tuple[str, str]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in fields
    ])


def _abort(context: grpc.ServicerContext, failure: Failure) -> None:
    status = status_pb2.Status(code=failure.code.value[0], message=failure.message)
    for detail in failure.details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(failure.code, failure.message)


@dataclass
class Call:
    method: str
    at: float
    metadata: dict[str, str]


@dataclass
class Script:
    """Answers per method name, taken in order; the last one repeats."""

    answers: dict[str, list[Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, method: str, context: grpc.ServicerContext) -> Any:
        with self.lock:
            metadata = {k: str(v) for k, v in context.invocation_metadata()}
            self.calls.append(Call(method, time.monotonic(), metadata))
            queue = self.answers[method]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def times(self, method: str) -> list[float]:
        return [c.at for c in self.calls if c.method == method]


class ClustersServicer(cluster_service_pb2_grpc.ClusterServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def _unary(self, method: str, context: grpc.ServicerContext) -> Any:
        answer = self.script.next(method, context)
        if isinstance(answer, Failure):
            _abort(context, answer)
        return answer

    def GetCluster(self, request: Any, context: Any) -> Any:
        return self._unary("GetCluster", context)

    def DeleteCluster(self, request: Any, context: Any) -> Any:
        return self._unary("DeleteCluster", context)


class _Operations(operation_service_pb2_grpc.OperationServiceServicer):
    """WatchOperation answers are lists of states to send (then the stream ends), a Failure
    after them, or "hang" (keep the stream open)."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def WatchOperation(self, request: Any, context: Any) -> Iterator[Any]:
        for step in self.script.next("WatchOperation", context):
            if isinstance(step, Failure):
                _abort(context, step)
            elif step == "hang":
                while context.is_active():
                    time.sleep(0.05)
                return
            else:
                yield operation_service_pb2.WatchOperationResponse(operation=step)


def operation(state: int, **fields: Any) -> operation_pb2.Operation:
    return operation_pb2.Operation(id="op-1", state=state, **fields)  # type: ignore[arg-type]


class FakeServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        # The servicer bases are abstract only in the type stubs: unscripted RPCs answer
        # UNIMPLEMENTED at run time, which is what these tests want.
        clusters = ClustersServicer(script)  # type: ignore[abstract]
        operations = _Operations(script)  # type: ignore[abstract]
        cluster_service_pb2_grpc.add_ClusterServiceServicer_to_server(clusters, self.server)
        operation_service_pb2_grpc.add_OperationServiceServicer_to_server(operations, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = f"127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None)


def get_ok() -> cluster_service_pb2.GetClusterResponse:
    return cluster_service_pb2.GetClusterResponse()
