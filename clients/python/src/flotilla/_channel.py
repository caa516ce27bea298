"""Where and how to connect: the address, TLS or (loopback only) plain text, and the token."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class Target:
    """A parsed address: `host:port` for grpc, and whether it is plain text."""

    target: str
    host: str
    plaintext: bool


def parse_address(address: str | None, *, insecure: bool) -> Target:
    """`host:port`, `https://host:port` or `http://host:port` (plain text, as `insecure=True`).

    Plain text is refused unless the host is a loopback address or `localhost`: the token would
    travel in the clear otherwise. Without an address, `FLOTILLA_ADDR`, then 127.0.0.1:50051.
    """
    raw = address or os.environ.get("FLOTILLA_ADDR") or DEFAULT_ADDRESS
    plaintext = insecure
    if raw.startswith("http://"):
        raw, plaintext = raw.removeprefix("http://"), True
    elif raw.startswith("https://"):
        if insecure:
            raise ValueError("an https:// address cannot be used with insecure=True")
        raw = raw.removeprefix("https://")
    raw = raw.rstrip("/")
    host, port = _split_host_port(raw)
    if plaintext and not is_loopback(host):
        raise ValueError(
            f"plain text (insecure=True or http://) is only allowed to a loopback address, "
            f"not {host!r}: the token would travel unencrypted; use TLS"
        )
    bracketed = f"[{host}]" if ":" in host else host
    return Target(target=f"{bracketed}:{port}", host=host, plaintext=plaintext)


def _split_host_port(raw: str) -> tuple[str, int]:
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port_text = rest.removeprefix(":") or "443"
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host, port_text = raw, "443"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"invalid port in address {raw!r}") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"invalid address {raw!r}; expected host:port")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from(token: str | None) -> str | None:
    """The token argument, else `FLOTILLA_TOKEN`; None sends no authorization header."""
    return token or os.environ.get("FLOTILLA_TOKEN") or None


def channel_credentials(ca_file: str | Path | None) -> grpc.ChannelCredentials:
    """TLS: the system roots (grpc's bundled roots), or only the CA certificates of `ca_file`."""
    if ca_file is None:
        return grpc.ssl_channel_credentials()
    return grpc.ssl_channel_credentials(root_certificates=Path(ca_file).read_bytes())
