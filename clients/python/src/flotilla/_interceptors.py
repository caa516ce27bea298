"""The interceptors of every channel: bearer token, retries, and errors as `FlotillaError`.

Putting all three in the generated stubs' path (rather than in wrapper methods) keeps the stubs
the public API: `client.clusters.GetCluster(...)` gets the token, the retry policy and decoded
errors exactly like the paging helpers do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio

from flotilla.errors import from_rpc_error
from flotilla.retry import RetryPolicy

Resp = TypeVar("Resp")

Metadata = tuple[tuple[str, str | bytes], ...]


def _with_token(metadata: Any, token: str | None) -> Metadata:
    pairs: list[tuple[str, str | bytes]] = [(str(k), v) for k, v in (metadata or ())]
    if token and not any(k.lower() == "authorization" for k, _ in pairs):
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple(pairs)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Metadata | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class SyncInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    def __init__(
        self,
        token: str | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._token = token
        self._policy = policy
        self._sleep = sleep

    def _details(self, details: grpc.ClientCallDetails, timeout: float | None) -> _CallDetails:
        return _CallDetails(
            method=details.method,
            timeout=timeout,
            metadata=_with_token(details.metadata, self._token),
            credentials=details.credentials,
            wait_for_ready=getattr(details, "wait_for_ready", None),
            compression=getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        timeout = client_call_details.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 1
        while True:
            details = self._details(client_call_details, _remaining(deadline))
            outcome = continuation(details, request)
            exc = outcome.exception()
            if exc is None or not isinstance(exc, grpc.RpcError):
                return outcome
            error = from_rpc_error(exc)
            method = _method_name(client_call_details.method)
            delay = self._policy.delay_before_retry(method, error, attempt)
            left = _remaining(deadline)
            if delay is None or (left is not None and delay >= left):
                raise error from exc
            self._sleep(delay)
            attempt += 1

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        call = continuation(
            self._details(client_call_details, client_call_details.timeout), request
        )
        return _DecodingStream(call)


class _DecodingStream(Generic[Resp]):
    """A server stream whose failure raises `FlotillaError`; everything else is the grpc call's."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Resp]:
        return self

    def __next__(self) -> Resp:
        try:
            return next(self._call)  # type: ignore[no-any-return]
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _AsyncInterceptorBase:
    def __init__(self, token: str | None, policy: RetryPolicy) -> None:
        self._token = token
        self._policy = policy

    def _details(self, details: grpc.aio.ClientCallDetails, timeout: float | None) -> Any:
        metadata = grpc.aio.Metadata(*_with_token(details.metadata, self._token))
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


class AsyncUnaryInterceptor(_AsyncInterceptorBase, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        timeout = client_call_details.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 1
        while True:
            call = await continuation(
                self._details(client_call_details, _remaining(deadline)), request
            )
            try:
                await call
                return call
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                delay = self._policy.delay_before_retry(
                    _method_name(client_call_details.method), error, attempt
                )
                left = _remaining(deadline)
                if delay is None or (left is not None and delay >= left):
                    raise error from exc
                await asyncio.sleep(delay)
                attempt += 1


class AsyncStreamInterceptor(_AsyncInterceptorBase, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        call = await continuation(
            self._details(client_call_details, client_call_details.timeout), request
        )
        return _decoding_async_stream(call)


def async_interceptors(
    token: str | None, policy: RetryPolicy
) -> list[grpc.aio.ClientInterceptor]:
    """grpc.aio files each interceptor under one RPC kind only, so each kind gets its own."""
    return [AsyncUnaryInterceptor(token, policy), AsyncStreamInterceptor(token, policy)]


async def _decoding_async_stream(call: Any) -> AsyncIterator[Any]:
    try:
        async for message in call:
            yield message
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from exc
    finally:
        # Leaving the loop early (break, an exception in the caller) must end the RPC too.
        call.cancel()


def _method_name(method: str | bytes) -> str:
    return method.decode() if isinstance(method, bytes) else method


__all__ = ["SyncInterceptor", "async_interceptors"]
