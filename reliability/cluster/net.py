"""The cluster's network: one namespace per host on one bridge, nothing else touched.

Every host ``H`` is the namespace ``tkc-H`` with one interface, ``eth0`` (10.77.0.x/24), the
far end of the veth ``tkc-H`` plugged into the bridge ``tkc-br``. The bridge has
10.77.0.1/24 in the root namespace, where the clients and the driver run. No route, NAT or
firewall rule is added: traffic stays between these addresses. :func:`teardown` removes
every ``tkc-*`` namespace (killing what runs in it) and the bridge; it runs before a new
cluster is built (a previous run may have been killed) and at exit.
"""

import contextlib
import os
import signal
import subprocess

PREFIX = "tkc"
BRIDGE = f"{PREFIX}-br"
NET = "10.77.0"
CLIENT_ADDRESS = f"{NET}.1"
HOSTS = {
    "edge": 2,
    "api1": 11,
    "api2": 12,
    "worker1": 21,
    "worker2": 22,
    "beat": 30,
    "db": 40,
    "hooks": 50,
}


def address(host: str) -> str:
    return f"{NET}.{HOSTS[host]}"


def namespace(host: str) -> str:
    return f"{PREFIX}-{host}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def in_host(host: str, argv: list[str]) -> list[str]:
    """``argv`` run inside ``host``'s namespace (``ip netns exec`` execs it: same pid)."""
    return ["ip", "netns", "exec", namespace(host), *argv]


def teardown() -> None:
    """Remove every namespace and the bridge of a cluster, ours or a killed run's."""
    listed = ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        if not name.startswith(PREFIX + "-"):
            continue
        pids = ip("netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "delete", name, check=False)
    ip("link", "delete", BRIDGE, check=False)
    for host in HOSTS:
        ip("link", "delete", namespace(host), check=False)


def build() -> None:
    teardown()
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{CLIENT_ADDRESS}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for host in HOSTS:
        ns, veth = namespace(host), namespace(host)
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", veth, "master", BRIDGE, "up")
        ip("-n", ns, "addr", "add", f"{address(host)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")


def link(host: str, up: bool) -> None:
    """Cut (or restore) ``host``'s cable: its veth end on the bridge goes down."""
    ip("link", "set", namespace(host), "up" if up else "down")
