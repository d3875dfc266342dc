"""The embedded stack of ``hprobust serve``: what its Ray head exposes to the network, and an
MLflow UI that dies is reported by ``/readyz`` and started again on its port."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
from pathlib import Path

import httpx
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


def test_free_ports_are_distinct_bindable_and_skip_those_asked() -> None:
    """Ports picked one at a time repeat (1 set of a Ray head's 9 in about 400 on this
    machine, and ``ray start`` then refuses to run): a set is picked with every port held.
    400 picked one at a time would repeat one with a probability of 0.99 or more."""
    from service.stack import free_ports, port_is_free

    ports = free_ports(400)
    assert len(ports) == 400 and len(set(ports)) == 400
    assert all(port_is_free(port) for port in ports[:20])  # released for their servers
    left_out = ports[:50]
    assert not set(free_ports(400, besides=left_out)) & set(left_out)


def test_a_dead_mlflow_ui_is_reported_and_restarted_on_its_port(
    ray_head: Child, tmp_path: Path
) -> None:
    from service.stack import free_ports, group_alive, load_state, stop_group
    from tests.service.conftest import ServeProcess, serve_env

    data_dir, (ui_port, port) = tmp_path / "data", free_ports(2)
    env = serve_env(
        ray_address=ray_head.url, ray_auth_token=ray_head.extra["token"], poll_interval_s=0.5
    )
    serve = ServeProcess(
        ["--data-dir", str(data_dir), "--mlflow-port", str(ui_port)],
        env,
        tmp_path / "serve.log",
        port,
    )
    groups: set[int] = set()
    serve.start()
    try:
        ready = httpx.get(f"{serve.url}/readyz", timeout=60)
        assert ready.status_code == 200, ready.text
        assert ready.json()["mlflow_ui"] == "ok"
        ui = next(c for c in load_state(data_dir) if c.name == "mlflow")
        groups.add(ui.pid)
        assert ui.url == f"http://127.0.0.1:{ui_port}"

        os.killpg(ui.pid, signal.SIGKILL)  # the whole UI dies
        wait_for(lambda: not group_alive(ui.pid), timeout_s=30, what="the UI's group to be gone")
        down = httpx.get(f"{serve.url}/readyz", timeout=60)  # a restart takes seconds
        assert down.status_code == 503, down.text
        assert down.json()["mlflow_ui"].startswith(f"down: {ui.url} (its process is gone")
        assert down.json()["ray"] == "ok" and down.json()["mlflow"] == "ok"

        wait_for(
            lambda: httpx.get(f"{serve.url}/readyz", timeout=60).status_code == 200,
            timeout_s=240,
            what="the MLflow UI to be restarted",
        )
        # /readyz sees the new child as soon as the supervisor swaps it in; stack.json is
        # written just after: wait for the file to name a new process (or fail below).
        wait_for(
            lambda: next(c for c in load_state(data_dir) if c.name == "mlflow").pid != ui.pid,
            timeout_s=60,
            what="stack.json to name the restarted UI",
        )
        new = next(c for c in load_state(data_dir) if c.name == "mlflow")
        groups.add(new.pid)
        assert new.pid != ui.pid and new.url == ui.url  # a new process, on the same port
        assert httpx.get(f"{ui.url}/health", timeout=30).status_code == 200
        assert f"restarted the mlflow at {ui.url}" in serve.output()

        assert serve.terminate() == 0  # and it is stopped with the rest
        wait_for(lambda: not group_alive(new.pid), timeout_s=60, what="the new UI to stop")
    finally:
        serve.cleanup()
        for pgid in groups:
            if group_alive(pgid):
                stop_group(pgid, grace_s=5)


def test_http_ok_reaches_local_children_directly_whatever_the_proxy(monkeypatch) -> None:
    """A lab's ``http_proxy`` (or one that ``urlopen``'s process-wide opener kept from an
    earlier call) must not stand between ``hprobust serve`` and the processes it started."""
    import http.server
    import threading
    import urllib.request

    from service.stack import http_ok

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        refusing = "http://127.0.0.1:9"  # a proxy on a closed port: anything through it fails
        for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(key, refusing)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        opener = urllib.request.build_opener()  # what urlopen does: takes the proxy
        with pytest.raises(OSError):
            opener.open(url, timeout=5)
        assert http_ok(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_group_alive_and_stop_group_on_a_real_process_group() -> None:
    """A group is alive while a member runs, and not once only zombies are left (the kernel
    keeps an unreaped member in its group, so ``os.killpg(pgid, 0)`` alone still says yes);
    ``stop_group`` ends every member, not only the leader."""
    import subprocess

    from service.stack import group_alive, stop_group

    def started() -> subprocess.Popen:
        proc = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
        wait_for(lambda: psutil.Process(proc.pid).children(), timeout_s=60, what="its sleep")
        return proc

    leader = started()
    pgid = leader.pid
    try:
        (member,) = psutil.Process(pgid).children()
        assert os.getpgid(member.pid) == pgid
        assert group_alive(pgid)
        os.kill(pgid, signal.SIGKILL)  # the leader dies, unreaped: a zombie of this process
        wait_for(
            lambda: psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE,
            timeout_s=60,
            what="the leader to be a zombie",
            poll_s=0.1,
        )
        assert group_alive(pgid)  # its member still runs
        member.kill()
        wait_for(lambda: not group_alive(pgid), timeout_s=60, what="no live member", poll_s=0.1)
        os.killpg(pgid, 0)  # the kernel still counts the group: its zombie leader
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        leader.wait(timeout=30)

    leader = started()
    (member,) = psutil.Process(leader.pid).children()
    try:
        stop_group(leader.pid, grace_s=30)
        assert not group_alive(leader.pid)
        assert not member.is_running() or member.status() == psutil.STATUS_ZOMBIE
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=30)
    assert leader.returncode == -signal.SIGTERM  # stopped by the TERM, not the KILL after


def test_a_ray_head_stops_through_its_ray_start_process(tmp_path: Path, monkeypatch) -> None:
    """``Child.stop`` of a real Ray head signals its ``ray start --block`` process, which
    stops the GCS, the raylet and the dashboard itself and exits: nothing of the head is
    left, and its leader was not killed. (Signalled as a whole group, the same head took
    about 30 s to end here: past ``hprobust serve``'s 20 s grace, so it was killed.)

    The head runs with the environment ``hprobust`` sets up for its own Ray whoever starts
    it: its raylet lets workers leave their process group (so a trial's actor can take a
    session and CPU share of its own), even when the caller never set that up (a
    benchmark's head did not, and its trials kept the API's share of the cores)."""
    from service.stack import group_alive, start_ray_head

    monkeypatch.delenv("RAY_process_group_cleanup_enabled", raising=False)
    head = start_ray_head(num_cpus=1, log_dir=tmp_path)
    members = [p for p in psutil.process_iter() if _group_of(p.pid) == head.pid]
    assert {"gcs_server", "raylet"} <= {p.name() for p in members}
    raylet = next(p for p in members if p.name() == "raylet")
    assert raylet.environ().get("RAY_process_group_cleanup_enabled") == "0"
    try:
        head.stop(grace_s=240)  # half of it for the head to stop by itself
        assert not group_alive(head.pid)
        _, status = os.waitpid(head.pid, 0)  # the leader: this process's child
        assert not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGKILL, status
        assert not [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


#: A member that notes, in the order they arrive, the signals it gets (TERM, or USR1: its
#: leader telling it to stop), then stops on USR1.
MEMBER = """
import os, signal, sys, time
read, write = os.pipe()
os.set_blocking(write, False)
signal.set_wakeup_fd(write)  # each signal's number, written as it arrives
stopping = []
signal.signal(signal.SIGTERM, lambda *_: None)
signal.signal(signal.SIGUSR1, lambda *_: stopping.append(True))
open(sys.argv[1] + "/ready", "w").close()
while not stopping:
    time.sleep(0.05)
got = [signal.Signals(n).name for n in os.read(read, 64)]
open(sys.argv[1] + "/signals", "w").write(" ".join(got))
"""

#: A leader that, told to stop, stops its member itself (as ``ray start --block`` does).
LEADER = """
trap 'kill -USR1 $member; wait $member; exit 0' TERM
"$2" -c "$3" "$1" &
member=$!
wait
"""


@pytest.mark.parametrize("leader_first", [True, False])
def test_stop_group_leader_first_signals_only_the_leader(
    tmp_path: Path, leader_first: bool
) -> None:
    """Leader first, only the leader is told (SIGTERM) and it stops its member; signalled
    as a group, every member is told at once (which a Ray head's GCS and ``ray start`` did
    not stop from in 15 s)."""
    import subprocess
    import sys

    from service.stack import group_alive, stop_group

    proc = subprocess.Popen(
        ["sh", "-c", LEADER, "sh", str(tmp_path), sys.executable, MEMBER],
        start_new_session=True,
    )
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), timeout_s=60, what="the member")
        stop_group(proc.pid, grace_s=240, leader_first=leader_first)
        assert not group_alive(proc.pid)
        got = (tmp_path / "signals").read_text().split()
        assert got == (["SIGUSR1"] if leader_first else ["SIGTERM", "SIGUSR1"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == 0  # the leader's own exit: no SIGKILL after the grace
