"""Python client of the Flotilla control plane.

`flotilla.Client` (sync) and `flotilla.AsyncClient` (asyncio) connect with a token (argument or
`FLOTILLA_TOKEN`) over TLS (plain text only to loopback, when asked), expose every service's
generated stub, page through every List RPC, wait for operations and raise `FlotillaError` with
the server's `google.rpc` details. The generated messages and stubs are in `flotilla.v1`
(`from flotilla.v1 import cluster_service_pb2`), regenerated from proto/ by scripts/gen-clients.
"""

from flotilla.aio import AsyncClient
from flotilla.client import Client
from flotilla.errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    FlotillaError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OperationFailedError,
    OperationTimeoutError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    from_rpc_error,
)
from flotilla.retry import NO_RETRY, RetryPolicy

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AsyncClient",
    "CancelledError",
    "Client",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "FlotillaError",
    "InternalError",
    "InvalidArgumentError",
    "NO_RETRY",
    "NotFoundError",
    "OperationFailedError",
    "OperationTimeoutError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RetryPolicy",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "from_rpc_error",
]
