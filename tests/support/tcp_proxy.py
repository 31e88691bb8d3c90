"""A TCP proxy for fault injection between a client and a broker (or any server).

    with TcpProxy("127.0.0.1", 5672) as proxy:
        uri = f"amqp://guest:guest@127.0.0.1:{proxy.port}/vhost"
        proxy.cut_after(20_000, pause=True)   # cut every connection mid-stream
        ...
        proxy.wait_cut(timeout=10)
        proxy.resume()

Plain sockets and threads: under eventlet's monkey patching they are green, so the
proxy runs on the same hub as the code under test; without it they are OS threads.
A cut shuts the connections down and closes them with an RST (SO_LINGER 0), which is
what a broker crash or a network failure looks like to the client, more exactly placed
than closing connections through the management API.
"""
from __future__ import annotations

import socket
import struct
import threading
from typing import Callable


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1",
                 port: int = 0, chunk: int = 16384):
        self.upstream = (upstream_host, upstream_port)
        self.chunk = chunk
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self._listener.settimeout(0.2)  # lets the accept loop notice close()
        self.host, self.port = self._listener.getsockname()
        self._lock = threading.Lock()
        self._pairs: list[_Link] = []
        self._accepting = True
        self._closed = False
        self._cut_at: int | None = None  # client->server byte count that triggers a cut
        self._pause_on_cut = False
        self.bytes_up = 0  # client -> server, all connections, since start
        self.bytes_down = 0
        self.connections = 0  # accepted and forwarded
        self.refused = 0
        self.cuts = 0
        self.cut_event = threading.Event()
        self.on_cut: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # -- control ------------------------------------------------------------------
    def cut_after(self, nbytes: int, *, pause: bool = False) -> None:
        """Cut all connections once `nbytes` more bytes went client->server; the
        bytes up to that point are forwarded, the rest of that chunk is not.
        With `pause`, new connections are refused from the cut on until `resume()`."""
        with self._lock:
            self._cut_at = self.bytes_up + nbytes
            self._pause_on_cut = pause
            self.cut_event.clear()

    def cut(self, *, pause: bool = False) -> None:
        """Reset every open connection now."""
        with self._lock:
            self._cut_locked(pause)
        self._after_cut()

    def pause_accepting(self) -> None:
        """New connections are accepted and reset at once (the client sees a failure)."""
        self._accepting = False

    def resume(self) -> None:
        self._accepting = True

    def wait_cut(self, timeout: float) -> bool:
        return self.cut_event.wait(timeout)

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._thread.join(timeout=5)  # the accept loop closes the listener itself

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # -- internals ----------------------------------------------------------------
    # Sockets are shut down by whoever cuts, but closed only by the last of their two
    # pump threads: under eventlet, closing a socket another greenthread is blocked on
    # leaves a stale hub listener, and the next socket given that fd number (a
    # database connection, say) then fails with "second simultaneous read".
    def _cut_locked(self, pause: bool) -> None:
        links, self._pairs = self._pairs, []
        self._cut_at = None
        if pause:
            self._accepting = False
        for link in links:
            link.shutdown()
        self.cuts += 1

    def _after_cut(self) -> None:
        self.cut_event.set()
        if self.on_cut is not None:
            self.on_cut()

    def _accept_loop(self) -> None:
        try:
            while not self._closed:
                try:
                    client, _ = self._listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not self._accepting or self._closed:
                    self.refused += 1
                    _reset(client)  # nobody else waits on it: close at once
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _reset(client)
                    continue
                link = _Link(client, server)
                with self._lock:
                    self._pairs.append(link)
                    self.connections += 1
                threading.Thread(target=self._pump, args=(link, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(link, False), daemon=True).start()
        finally:
            self._listener.close()

    def _pump(self, link: "_Link", upstream: bool) -> None:
        src, dst = (link.client, link.server) if upstream else (link.server, link.client)
        try:
            while True:
                data = src.recv(self.chunk)
                if not data:
                    break
                cut_now = False
                if upstream:
                    with self._lock:
                        if link not in self._pairs:
                            return
                        if self._cut_at is not None and self.bytes_up + len(data) >= self._cut_at:
                            data = data[:self._cut_at - self.bytes_up]
                            cut_now = True
                        self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                if data:
                    dst.sendall(data)
                if cut_now:
                    with self._lock:
                        self._cut_locked(self._pause_on_cut)
                    self._after_cut()
                    return
        except (OSError, EOFError):  # EOFError: eventlet, on a socket closed under it
            pass
        finally:
            with self._lock:
                if link in self._pairs:
                    self._pairs.remove(link)
            link.shutdown()
            link.release()


class _Link:
    """A client socket and its upstream socket, closed when both pumps are done."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self._users = 2
        self._lock = threading.Lock()
        for s in (client, server):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # close() then sends an RST, as a crashed peer or a dropped link would
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def shutdown(self) -> None:
        """Wake both pumps (their recv returns) without closing the descriptors."""
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            for s in (self.client, self.server):
                try:
                    s.close()
                except OSError:
                    pass


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0); only for a socket no other thread waits on."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
