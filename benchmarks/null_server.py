"""The fastest HTTP server we can make in Python: answers every request 200 ``{}`` at once.

Used twice by the benchmark: to show the load generator is not the bottleneck (its rate
against this server), and as the vendor endpoint of deliveries (it counts requests per path and
answers ``GET /_count``; ``GET /_last/<path>`` gives the last request to ``/<path>``, headers and
body, so the aiohttp floor can post exactly what the worker posted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter

COUNTS: Counter[str] = Counter()
LAST: dict[str, tuple[bytes, bytes]] = {}
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Protocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            path = head.split(b" ", 2)[1].decode()
            if path == "/_count" or path.startswith("/_last/"):
                self.answer(path)
                continue
            COUNTS[path] += 1
            LAST[path] = (head, body)
            self.transport.write(OK)  # type: ignore[attr-defined]

    def answer(self, path: str) -> None:
        if path == "/_count":
            body = json.dumps(COUNTS).encode()
        else:
            head, sent = LAST.get(path[len("/_last") :], (b"", b""))
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = [line.split(":", 1) for line in lines if ":" in line]
            body = json.dumps(
                {"headers": [[k.strip(), v.strip()] for k, v in headers], "body": sent.decode()}
            ).encode()
        self.transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Protocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args().port))
