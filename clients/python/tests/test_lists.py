"""Every List RPC of every service has a generator on Client and AsyncClient, and the paged ones
follow next_page_token: found by walking the service descriptors, so a new List RPC without a
generator fails here."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
from typing import Any

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

import flotilla
import flotilla.v1


def list_rpcs() -> list[MethodDescriptor]:
    found: list[MethodDescriptor] = []
    for info in pkgutil.iter_modules(flotilla.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"flotilla.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                found += [m for m in service.methods if m.name.startswith("List")]
    return found


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def test_the_descriptors_have_list_rpcs() -> None:
    names = {m.name for m in list_rpcs()}
    assert {"ListClusters", "ListNodes", "ListOperations", "ListTags"} <= names


class FakeStub:
    """Answers a List RPC with two pages (one item each) when it is paged, else one answer."""

    def __init__(self, method: MethodDescriptor, asynchronous: bool) -> None:
        self.method = method
        self.asynchronous = asynchronous
        self.tokens: list[str] = []
        self.paged = "page_token" in method.input_type.fields_by_name

    def __getattr__(self, name: str) -> Any:
        assert name == self.method.name, f"called {name}, expected {self.method.name}"
        return self.call

    def call(self, request: Any, *, timeout: float | None = None) -> Any:
        token = request.page_token if self.paged else ""
        self.tokens.append(token)
        response: Any = message_factory.GetMessageClass(self.method.output_type)()
        items = next(f for f in self.method.output_type.fields if f.is_repeated and f.name != "unreachable")
        repeated = getattr(response, items.name)
        if items.message_type is None:
            repeated.append(f"item {token}")
        else:
            repeated.add()
        if self.paged and not token:
            response.next_page_token = "page-2"
        if self.asynchronous:
            async def answer() -> Any:
                return response
            return answer()
        return response


def stub_attribute(client: Any, method: MethodDescriptor) -> str:
    service = method.containing_service.name
    for name, value in vars(client).items():
        if type(value).__name__ == f"{service}Stub":
            return str(name)
    raise AssertionError(f"the client has no stub attribute for {service}")


@pytest.mark.parametrize("method", list_rpcs(), ids=lambda m: m.name)
def test_every_list_rpc_has_a_generator_that_pages(method: MethodDescriptor) -> None:
    expected = 2 if "page_token" in method.input_type.fields_by_name else 1
    with flotilla.Client("127.0.0.1:9", insecure=True) as client:
        fake = FakeStub(method, asynchronous=False)
        setattr(client, stub_attribute(client, method), fake)
        generator = getattr(client, snake(method.name), None)
        assert generator is not None, f"flotilla.Client has no {snake(method.name)}"
        assert len(list(generator())) == expected
        assert fake.tokens == ["", "page-2"][:expected]

    async def run() -> None:
        async with flotilla.AsyncClient("127.0.0.1:9", insecure=True) as aclient:
            afake = FakeStub(method, asynchronous=True)
            setattr(aclient, stub_attribute(aclient, method), afake)
            agenerator = getattr(aclient, snake(method.name), None)
            assert agenerator is not None, f"flotilla.AsyncClient has no {snake(method.name)}"
            assert len([item async for item in agenerator()]) == expected
            assert afake.tokens == ["", "page-2"][:expected]

    asyncio.run(run())
