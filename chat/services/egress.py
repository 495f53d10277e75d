"""Where outbound webhooks may go: public addresses only, unless the operator allows more.

A webhook URL is chosen by a workspace, so without this a tenant could make the server
POST into its own network (a cloud metadata endpoint, an admin port on localhost).
With ``PARLEY_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` set, internal receivers (a bot on the
same network, a test server) are allowed again.

Checked twice: when the URL is given (an address or ``localhost`` written in it, so the
caller hears at once) and before each delivery (what the name resolves to then). The
HTTP client resolves the name again when it connects, so a name that changes its
answer in between can still slip through; pinning the checked address is not done.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _not_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def written_problem(url: str) -> str | None:
    """Why ``url`` may not be called, judging by what is written in it; None if it may."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return "the URL names no host"
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this server"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"{ip} is not a public address" if _not_public(ip) else None


async def resolved_problem(url: str) -> str | None:
    """Like ``written_problem``, and also whether the name resolves to a non-public
    address. A name that does not resolve is not a problem here (the delivery fails
    and is retried like any unreachable receiver)."""
    problem = written_problem(url)
    if problem is not None:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if _not_public(ip):
            return f"{host} resolves to {ip}, which is not a public address"
    return None
