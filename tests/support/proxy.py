"""An asyncio TCP proxy that injects network faults between a client and a server.

``FaultProxy(host, port)`` listens on a free loopback port and forwards every accepted
connection to ``host:port``. While running it can:

* :meth:`FaultProxy.stall` - keep the connections open but stop forwarding bytes in
  both directions (a partition, or a server stuck mid-command); :meth:`resume` delivers
  everything held back, in order, late;
* :meth:`FaultProxy.drop` - close every open connection at once (a reset mid-command);
* :meth:`FaultProxy.refuse` - close new connections as soon as they are accepted.

It runs in the test's own event loop, so the client under test shares the loop.
"""

from __future__ import annotations

import asyncio
import contextlib


class FaultProxy:
    """Forward, stall, drop or refuse TCP connections to one upstream server."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        """The port the proxy listens on (after :meth:`start`)."""
        assert self._server is not None, "start() the proxy first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    host = "127.0.0.1"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        return self

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- faults ---------------------------------------------------------------------
    def stall(self) -> None:
        """Stop forwarding (bytes already read are held until :meth:`resume`)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, held bytes first."""
        self._flowing.set()

    def refuse(self, refusing: bool = True) -> None:
        """Close (True) or accept again (False) new connections."""
        self._refusing = refusing

    async def drop(self) -> int:
        """Close every open connection, both sides; returns how many were open."""
        links = list(self._links)
        for client, upstream in links:
            for writer in (client, upstream):
                writer.transport.abort()
        self._links.clear()
        await asyncio.sleep(0)
        return len(links)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self._flowing.set()
        if self._server is not None:
            self._server.close()
        await self.drop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    # -- plumbing -------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if link not in self._links:
                    break
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if link in self._links:
                self._links.discard(link)
                for writer in link:
                    writer.transport.abort()
