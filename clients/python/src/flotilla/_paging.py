"""Following `next_page_token`: the one paging loop behind every List generator."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class PagedRequest(Protocol):
    page_token: str


class PagedResponse(Protocol):
    @property
    def next_page_token(self) -> str: ...


Req = TypeVar("Req")
PReq = TypeVar("PReq", bound=PagedRequest)
PResp = TypeVar("PResp", bound=PagedResponse)
Resp = TypeVar("Resp")
Req_contra = TypeVar("Req_contra", contravariant=True)
Resp_co = TypeVar("Resp_co", covariant=True)


class UnaryCall(Protocol[Req_contra, Resp_co]):
    def __call__(self, request: Req_contra, *, timeout: float | None = ...) -> Resp_co: ...


def paginate(
    call: UnaryCall[PReq, PResp],
    request: PReq,
    items: Callable[[PResp], Iterable[T]],
    timeout: float | None,
) -> Iterator[T]:
    """Items of every page, starting at `request.page_token`; `request` itself is not changed."""
    page = copy.deepcopy(request)
    while True:
        response = call(page, timeout=timeout)
        yield from items(response)
        if not response.next_page_token:
            return
        page.page_token = response.next_page_token


def unpaged(
    call: UnaryCall[Req, Resp],
    request: Req,
    items: Callable[[Resp], Iterable[T]],
    timeout: float | None,
) -> Iterator[T]:
    yield from items(call(request, timeout=timeout))


async def apaginate(
    call: UnaryCall[PReq, Awaitable[PResp]],
    request: PReq,
    items: Callable[[PResp], Iterable[T]],
    timeout: float | None,
) -> AsyncIterator[T]:
    page = copy.deepcopy(request)
    while True:
        response = await call(page, timeout=timeout)
        for item in items(response):
            yield item
        if not response.next_page_token:
            return
        page.page_token = response.next_page_token


async def aunpaged(
    call: UnaryCall[Req, Awaitable[Resp]],
    request: Req,
    items: Callable[[Resp], Iterable[T]],
    timeout: float | None,
) -> AsyncIterator[T]:
    for item in items(await call(request, timeout=timeout)):
        yield item
