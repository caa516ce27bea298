"""When to call again: a bounded retry policy that honours the server's `RetryInfo`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

from flotilla.errors import FlotillaError

# Method-name prefixes of the RPCs that only read: repeating them can change nothing.
_READ_PREFIXES = ("Get", "List")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of unary calls that failed with a temporary status.

    UNAVAILABLE is retried, after the server's `RetryInfo.retry_delay` when it sent one, else after
    an exponential backoff with full jitter. RESOURCE_EXHAUSTED is retried only when the server
    sent a `RetryInfo` (a quota without one will not pass by waiting). Only reads (Get*, List*)
    are retried unless `retry_writes` is set: a write that reached the server before the
    connection dropped could otherwise happen twice (use `request_id` idempotency keys for writes
    you let retry). Streams are not retried here (`wait_operation` reconnects by itself).
    """

    # Attempts in total, the first one included.
    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    # A server asking for a longer wait than this is not retried: the error is raised at once.
    max_retry_delay: float = 30.0
    retry_writes: bool = False
    retryable_codes: frozenset[grpc.StatusCode] = field(
        default=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
    )

    def delay_before_retry(
        self, method: str, error: FlotillaError, attempt: int, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when the error is final.

        `method` is the full gRPC method path ("/flotilla.v1.ClusterService/GetCluster");
        `attempt` counts from 1.
        """
        if attempt >= self.max_attempts or error.code() not in self.retryable_codes:
            return None
        if not self.retry_writes and not is_read_method(method):
            return None
        if error.retry_delay is not None:
            return error.retry_delay if error.retry_delay <= self.max_retry_delay else None
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            return None
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)


def is_read_method(method: str) -> bool:
    """Whether the RPC at `method` ("/pkg.Service/Name") only reads."""
    return method.rsplit("/", 1)[-1].startswith(_READ_PREFIXES)
