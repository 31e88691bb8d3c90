"""Run nameko services as a process: what `cqo serve` (and so compose and the demo) uses.

Differences from `nameko run`: configuration goes through shared.config (YAML +
environment, county codes kept as strings), the web port is probed first (eventlet's
listener sets SO_REUSEPORT, so two services on one port would silently share it), and
SIGTERM stops gracefully but kills after a timeout (an idle nameko service can wait for
the next message before it notices the stop).
"""
from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import sys

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 3.0
# set by `cqo serve --processes N` for its children: they share the port on purpose
SHARED_PORT_ENV = "CQO_SHARED_PORT"


class PortInUse(RuntimeError):
    pass


def probe_port(address: str) -> None:
    """Refuse to start when something already listens on host:port."""
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host or "127.0.0.1", int(port))) == 0:
            raise PortInUse(f"端口 {address} 已被占用，请检查是否已有服务在运行或修改 WEB_SERVER_ADDRESS")


def run(service_classes: list[type], config: dict) -> None:
    import eventlet
    from nameko.runners import ServiceRunner

    if "WEB_SERVER_ADDRESS" in config and not os.environ.get(SHARED_PORT_ENV):
        probe_port(config["WEB_SERVER_ADDRESS"])
    runner = ServiceRunner(config)
    for cls in service_classes:
        runner.add_service(cls)

    def stop_or_kill():
        stopper = eventlet.spawn(runner.stop)
        try:
            with eventlet.Timeout(STOP_TIMEOUT_S):
                stopper.wait()
        except eventlet.Timeout:
            log.warning("graceful stop timed out after %.0fs; killing", STOP_TIMEOUT_S)
            # kill can hang as well: with the broker gone, nameko's consumers sit in
            # their reconnect loop (seen when compose stops every container at once)
            killer = eventlet.spawn(runner.kill)
            try:
                with eventlet.Timeout(KILL_TIMEOUT_S):
                    killer.wait()
            except eventlet.Timeout:
                log.warning("kill timed out after %.0fs; exiting", KILL_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - exiting anyway
                log.exception("kill failed; exiting")
            sys.stdout.flush()
            os._exit(1)

    stop_requested = []

    def on_signal(signum, frame):
        # only set a flag: eventlet primitives are unsafe in a signal handler, and a
        # greenthread spawned here would wait until the idle hub next wakes up
        stop_requested.append(signum)

    def watch_for_stop():
        # a short tick keeps the hub from sleeping through a signal
        # (docs/architecture.md, "nameko 2.14 on this stack")
        while not stop_requested:
            eventlet.sleep(0.2)
        log.info("signal %s received; stopping", stop_requested[0])
        _exit_later(STOP_TIMEOUT_S + KILL_TIMEOUT_S + 2)
        stop_or_kill()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    # what a service builds as it starts (modules, schemas, mappers, topology) lives as
    # long as the process: kept out of the collector's full passes, which otherwise walk
    # all of it again and again while a busy intake allocates (about a tenth of its CPU)
    gc.collect()
    gc.freeze()
    eventlet.spawn_n(watch_for_stop)
    log.info("started %s", ", ".join(cls.name for cls in service_classes))
    waiter = eventlet.spawn(runner.wait)
    while True:
        try:
            waiter.wait()
            break
        except OSError as exc:  # EINTR from the signal while the hub waits on a socket
            if exc.errno != errno.EINTR:
                raise
    log.info("stopped")
    sys.stdout.flush()


def _exit_later(seconds: float) -> None:
    """The last resort of a stop: an OS thread (not a greenthread) that ends the process.
    A call that blocks the whole hub (the C library's resolver retrying a DNS server that
    went away with the compose network) would hold eventlet's timeouts in stop_or_kill."""
    import eventlet.patcher

    threading = eventlet.patcher.original("threading")
    real_time = eventlet.patcher.original("time")

    def watchdog():
        real_time.sleep(seconds)
        os.write(2, f"stop still not finished after {seconds:.0f}s; exiting\n".encode())
        os._exit(1)

    threading.Thread(target=watchdog, name="stop-watchdog", daemon=True).start()


def _die_with_supervisor(supervisor_pid: int):
    """preexec_fn of a copy: on Linux it gets SIGTERM when the supervisor dies, even by
    SIGKILL (PR_SET_PDEATHSIG), instead of serving on as an orphan nobody stops."""

    def arm():
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return  # not Linux: the supervisor's own signal forwarding is all there is
        if os.getppid() != supervisor_pid:  # it died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def supervise(args: list[str], processes: int, address: str | None, service: str = "service") -> int:
    """Run `processes` copies of a service sharing one port (SO_REUSEPORT spreads the
    connections); forward SIGTERM/SIGINT to them and return the worst exit code.

    The copies share one PROMETHEUS_MULTIPROC_DIR (emptied first, or made for this run and
    removed after it): a scrape of /metrics, whichever copy answers, sums all of them."""
    import subprocess
    import time

    from shared import metrics

    if address:
        probe_port(address)
    metrics_dir, made_here = metrics.prepare_multiproc_dir(service)
    env = {**os.environ, SHARED_PORT_ENV: "1", metrics.MULTIPROC_ENV: metrics_dir}
    children = [subprocess.Popen(args, env=env, preexec_fn=_die_with_supervisor(os.getpid()))
                for _ in range(processes)]

    def forward(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    running = set(children)
    try:
        while running:
            for child in [c for c in running if c.poll() is not None]:
                running.discard(child)
                metrics.process_exited(child.pid, metrics_dir)
            time.sleep(0.2)
    finally:
        if made_here:
            metrics.remove_multiproc_dir(metrics_dir)
    return max(child.returncode or 0 for child in children)
