"""Where a webhook may send: the SSRF rules.

A target's host is resolved when a message is sent, every address it resolves to is
checked, and the request goes to the checked address (see :mod:`taskapp.delivery`), so
a name that resolves to a public address at registration and a private one later (DNS
rebinding) gains nothing. Refused unless inside ``WEBHOOK_ALLOWED_NETWORKS``: anything
that is not globally routable (loopback, private, link-local, CGNAT 100.64/10, reserved,
unspecified, documentation...), multicast, and IPv4 addresses hidden in IPv6 forms
(IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedTarget(Exception):
    """The URL's address may not be reached."""


def networks(allowed: list[str]) -> list:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in allowed]


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    return None


def is_refused(address: IPAddress, allowed: list) -> bool:
    if any(address in network for network in allowed if network.version == address.version):
        return False
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_refused(inner, allowed)
    return address.is_multicast or not address.is_global


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as a literal means, in any form a resolver accepts
    (``127.0.0.1``, ``::1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``)."""
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_literal(url: str, allowed: list[str]) -> None:
    """Refuse a URL whose host is a literal address that may not be reached (or whose
    port is out of range)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError:
        raise RefusedTarget("The port is not valid.") from None
    host = parts.hostname or ""
    address = literal_address(host)
    if address is not None and is_refused(address, networks(allowed)):
        raise RefusedTarget(f"The address {address} may not be reached.")


def resolve_checked(host: str, port: int, allowed: list[str]) -> str:
    """Resolve ``host`` and return an address to connect to; every address it resolves
    to must be allowed (a name with one private address among public ones is refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedTarget(f"cannot resolve {host}: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    allowed_networks = networks(allowed)
    refused = [a for a in addresses if is_refused(a, allowed_networks)]
    if refused or not addresses:
        raise RefusedTarget(f"{host} resolves to a refused address ({refused[0]})")
    return str(addresses[0])
