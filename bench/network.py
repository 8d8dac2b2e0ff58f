"""A TCP proxy on 127.0.0.1 that makes the local endpoint behave like a network.

A `Profile` adds, per connection: a set-up cost before the upstream connection is made; a delay
on the first bytes of each request and each response (each turn of the conversation, as the
time to first byte S3 shows); and a bandwidth cap in each direction (S3 gives one connection
roughly 80-90 MB/s). A local emulator has none of these, so tuning on it alone favours shallow
fetching over the depth and parallel connections a real network pays for.

It also counts what the client sends and receives (`Link.sent`, `Link.received`: requests and
responses, headers included), the figures server-side copy is judged on, and what it asks the
endpoint to copy (`Link.copied`: the lengths of the `x-amz-copy-source-range` it sends). The
local profile shapes nothing and only counts.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BUFFER = 256 * 1024
AHEAD = 0.05  # seconds of paced data a direction may queue before it stops reading
COPY_RANGE = re.compile(rb"x-amz-copy-source-range:\s*bytes=(\d+)-(\d+)", re.IGNORECASE)
CARRY = 128  # bytes of a request kept to find a header split between two reads


@dataclass(frozen=True)
class Profile:
    name: str
    connect_s: float = 0.0
    first_byte_s: float = 0.0
    bytes_per_s: float | None = None


LOCAL = Profile("local")
S3_LIKE = Profile("S3-like", connect_s=0.040, first_byte_s=0.020, bytes_per_s=80e6)


@dataclass
class Link:
    url: str = ""
    sent: int = 0  # bytes the client sent through the proxy (requests, headers included)
    received: int = 0  # bytes it received (responses, headers included)
    copied: int = 0  # bytes it asked the endpoint to copy (UploadPartCopy ranges)

    def count_request(self, carry: bytes, data: bytes) -> bytes:
        """Count a read of a request; returns what to carry over to the next read."""
        self.sent += len(data)
        seen = carry + data
        for match in COPY_RANGE.finditer(seen):
            if match.end() > len(carry):  # not counted with the read before
                self.copied += int(match[2]) - int(match[1]) + 1
        return seen[-CARRY:]


class _Turns:
    """Which direction spoke last on a connection: a change of turn is a new request/response."""

    def __init__(self) -> None:
        self.last: str | None = None


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    profile: Profile,
    turns: _Turns,
    direction: str,
    link: Link,
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    free_at = 0.0  # when the capped link can take the next byte

    async def pump() -> None:
        nonlocal free_at
        carry = b""
        while True:
            data = await reader.read(BUFFER)
            if direction == "request":
                carry = link.count_request(carry, data)
            else:
                link.received += len(data)
            now = loop.time()
            due = now
            if data and turns.last != direction:
                turns.last = direction
                due += profile.first_byte_s
            due = max(due, free_at)
            if profile.bytes_per_s:
                free_at = due + len(data) / profile.bytes_per_s
            await queue.put((due, data))
            if not data:
                return
            if (backlog := free_at - loop.time()) > AHEAD:
                await asyncio.sleep(backlog - AHEAD)  # backpressure: stop reading meanwhile

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(pump(), deliver())
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


@contextmanager
def network_proxy(upstream_port: int, profile: Profile) -> Iterator[Link]:
    loop = asyncio.new_event_loop()
    link = Link()

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        await asyncio.sleep(profile.connect_s)  # TCP and TLS set-up to a distant endpoint
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        turns = _Turns()
        await asyncio.gather(
            _pipe(client_reader, up_writer, profile, turns, "request", link),
            _pipe(up_reader, client_writer, profile, turns, "response", link),
            return_exceptions=True,
        )

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        link.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield link
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
