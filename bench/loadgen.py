"""A small HTTP/1.1 keep-alive load generator (asyncio, raw streams).

Closed loop: N connections each send the next request when the previous answered
(throughput). Open loop: requests are scheduled at a fixed rate and latency is
counted from the scheduled time, so a slow server cannot hide its queueing delay
(no coordinated omission).
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str) -> int:
        if self.writer is None:
            await self.open()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode() + self.extra + b"\r\n")
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed_loop(host, port, headers, next_path, connections, duration):
    stop_at = time.perf_counter() + duration
    counts, errors = [0] * connections, [0]

    async def worker(i):
        conn = Connection(host, port, headers)
        while time.perf_counter() < stop_at:
            try:
                status = await conn.get(next_path())
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                conn.close()
                errors[0] += 1
                continue
            if status == 200:
                counts[i] += 1
            else:
                errors[0] += 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return sum(counts) / (time.perf_counter() - started), errors[0]


def closed_loop(host: str, port: int, headers: dict, next_path: Callable[[], str],
                connections: int = 50, duration: float = 10.0) -> tuple[float, int]:
    """(requests per second with status 200, errors)."""
    return asyncio.run(_closed_loop(host, port, headers, next_path, connections, duration))


async def _open_loop(host, port, headers, next_path, rate, duration, max_connections):
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(max_connections):
        idle.put_nowait(Connection(host, port, headers))
    latencies, errors, tasks = [], [0], []
    start = time.perf_counter()

    async def one(scheduled):
        conn = await idle.get()
        try:
            status = await conn.get(next_path())
            if status == 200:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors[0] += 1
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            conn.close()
            errors[0] += 1
        finally:
            idle.put_nowait(conn)

    total = int(rate * duration)
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, errors[0]


def open_loop(host: str, port: int, headers: dict, next_path: Callable[[], str], *,
              rate: float, duration: float = 10.0, max_connections: int = 50):
    """(latencies in seconds of the successful requests, errors)."""
    return asyncio.run(_open_loop(host, port, headers, next_path, rate, duration, max_connections))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
