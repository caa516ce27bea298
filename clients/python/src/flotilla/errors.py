"""Errors of the Flotilla client: a gRPC status decoded with its `google.rpc` details.

Every failed call of a `flotilla.Client`/`AsyncClient` raises a `FlotillaError` (a subclass per
status code, such as `NotFoundError`), decoded once from the `grpc-status-details-bin` trailer:
`ErrorInfo` (reason, domain, metadata), `BadRequest` (the offending fields) and `RetryInfo`
(how long the server asks callers to wait). `FlotillaError` is also a `grpc.RpcError`, so code
written against plain gRPC keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from flotilla.v1 import operation_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One offending request field of an INVALID_ARGUMENT answer (`google.rpc.BadRequest`)."""

    field: str
    description: str


class FlotillaError(grpc.RpcError):
    """A failed call: the gRPC code and message plus the server's `google.rpc` details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_delay: float | None = None,
        trailing_metadata: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" [{reason}]" if reason else ""))
        self._code = code
        self.message: str = message
        # ErrorInfo.reason, such as "NOT_FOUND" or "ADDRESS_NOT_ALLOWED"; "" when not sent.
        self.reason: str = reason
        self.domain: str = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        # RetryInfo.retry_delay in seconds; None when the server did not say.
        self.retry_delay: float | None = retry_delay
        self._trailing_metadata = trailing_metadata

    @property
    def fields(self) -> list[str]:
        """Every offending field path, in the order the server listed them."""
        return [v.field for v in self.field_violations]

    @property
    def field(self) -> str | None:
        """The first offending field path, or None when the answer names none."""
        return self.field_violations[0].field if self.field_violations else None

    # grpc.RpcError's accessors, as grpc's own errors have them.
    def code(self) -> grpc.StatusCode:
        """The gRPC status code, such as `grpc.StatusCode.NOT_FOUND`."""
        return self._code

    def details(self) -> str:
        return self.message

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:  # type: ignore[override]
        return self._trailing_metadata

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self._code.name}, message={self.message!r}, "
            f"reason={self.reason!r}, fields={self.fields!r}, retry_delay={self.retry_delay!r})"
        )


class CancelledError(FlotillaError):
    pass


class UnknownError(FlotillaError):
    pass


class InvalidArgumentError(FlotillaError):
    pass


class DeadlineExceededError(FlotillaError):
    pass


class NotFoundError(FlotillaError):
    pass


class AlreadyExistsError(FlotillaError):
    pass


class PermissionDeniedError(FlotillaError):
    pass


class ResourceExhaustedError(FlotillaError):
    pass


class FailedPreconditionError(FlotillaError):
    pass


class AbortedError(FlotillaError):
    pass


class OutOfRangeError(FlotillaError):
    pass


class UnimplementedError(FlotillaError):
    pass


class InternalError(FlotillaError):
    pass


class UnavailableError(FlotillaError):
    pass


class DataLossError(FlotillaError):
    pass


class UnauthenticatedError(FlotillaError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[FlotillaError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def error_from_status(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Sequence[tuple[str, str | bytes]] | None,
) -> FlotillaError:
    """Builds the `FlotillaError` subclass for `code`, decoding the details trailer if present."""
    trailers = tuple(trailing_metadata or ())
    reason, domain = "", ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    raw = next((v for k, v in trailers if k == _STATUS_DETAILS_KEY), None)
    if isinstance(raw, bytes):
        status = status_pb2.Status()
        try:
            status.ParseFromString(raw)
        except DecodeError:  # a malformed trailer must not hide the original error
            status = status_pb2.Status()
        if status.message:
            message = status.message
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            bad = error_details_pb2.BadRequest()
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Unpack(bad):
                violations.extend(
                    FieldViolation(v.field, v.description) for v in bad.field_violations
                )
            elif detail.Unpack(retry):
                retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    cls = _BY_CODE.get(code, FlotillaError)
    return cls(
        code,
        message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=violations,
        retry_delay=retry_delay,
        trailing_metadata=trailers,
    )


def from_rpc_error(error: grpc.RpcError) -> FlotillaError:
    """Decodes a plain `grpc.RpcError` (sync or `grpc.aio`) into a `FlotillaError`."""
    if isinstance(error, FlotillaError):
        return error
    if isinstance(error, grpc.aio.AioRpcError):
        trailers = error.trailing_metadata()
        return error_from_status(error.code(), error.details() or "", _pairs(trailers))
    if isinstance(error, grpc.Call):
        return error_from_status(
            error.code(), error.details() or "", _pairs(error.trailing_metadata())
        )
    return FlotillaError(grpc.StatusCode.UNKNOWN, str(error))


def _pairs(metadata: Iterable[Any] | None) -> list[tuple[str, str | bytes]]:
    """(key, value) pairs of sync metadata (tuples of _Metadatum) or grpc.aio.Metadata."""
    return [(str(item[0]), item[1]) for item in metadata or ()]


class OperationFailedError(FlotillaError):
    """`wait_operation`: the operation ended FAILED or CANCELLED.

    `reason` is the error class name (such as "CREDENTIALS_INVALID", the same names the server
    uses as `ErrorInfo` reasons); `operation` is the final state with every step and error.
    """

    def __init__(self, operation: operation_pb2.Operation) -> None:
        error = operation.error
        class_name = operation_pb2.ErrorClass.Name(error.error_class)
        reason = class_name.removeprefix("ERROR_CLASS_") if error.error_class else ""
        state = operation_pb2.OperationState.Name(operation.state).removeprefix(
            "OPERATION_STATE_"
        )
        detail = error.vendor_message or error.vendor_code or operation.description
        retry_delay = None
        if error.HasField("retry_after"):
            retry_delay = error.retry_after.ToTimedelta().total_seconds()
        super().__init__(
            grpc.StatusCode.ABORTED,
            f"operation {operation.id} ended {state}" + (f": {detail}" if detail else ""),
            reason=reason,
            retry_delay=retry_delay,
        )
        self.operation: operation_pb2.Operation = operation
        self.error: operation_pb2.OperationError = error


class OperationTimeoutError(FlotillaError):
    """`wait_operation`: the timeout passed before the operation ended; `operation` is the last
    state seen (None when none arrived)."""

    def __init__(self, operation_id: str, operation: operation_pb2.Operation | None) -> None:
        super().__init__(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"operation {operation_id} did not end in time",
        )
        self.operation: operation_pb2.Operation | None = operation
