"""The embedded stack of ``hprobust serve``: what its Ray head exposes to the network."""

from __future__ import annotations

import ipaddress
import os

import psutil
import pytest

from service.stack import Child
from tests.service.conftest import wait_for

pytestmark = pytest.mark.slow


def listening(pgid: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of process group ``pgid``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return (mapped or ip).is_loopback


def test_every_port_of_the_embedded_ray_head_is_on_loopback(ray_head: Child) -> None:
    # the head's servers: GCS, raylet (node manager, object manager), dashboard, its agents
    names = {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}
    sockets = wait_for(
        lambda: (found := listening(ray_head.pid)) and names <= {n for n, _, _ in found} and found,
        timeout_s=120,
        what="the Ray head's servers to listen",
    )
    exposed = [s for s in sockets if not is_loopback(s[1])]
    assert exposed == [], f"listening beyond 127.0.0.1: {exposed}"
    ports = {port for _, _, port in sockets}
    assert int(ray_head.url.rsplit(":", 1)[1]) in ports  # the dashboard (Jobs API) is among them
    assert int(ray_head.extra["gcs_address"].rsplit(":", 1)[1]) in ports
    assert len(sockets) >= 6, sockets
