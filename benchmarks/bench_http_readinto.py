"""readinto into a preallocated buffer vs urllib3's ``.data``, 8 MB from loopback.

    python benchmarks/bench_http_readinto.py [--size-mb 8] [--runs 31]

Three ways to fetch the same body from a raw-socket server on 127.0.0.1:

* ``data``      urllib3 ``resp.data`` (what most code does);
* ``readinto``  urllib3 ``resp.readinto`` on windows of one ``bytearray``
                (the path loadstone.http takes for a known length);
* ``loadstone`` ``loadstone.http.HttpClient.get`` end to end (adds pooling
                policy, cancellation guard, size cap, progress).

Prints the median time of each and the ratios against ``data``.  The server
is the same for all, and runs are interleaved so drift hits each equally.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable

import urllib3

from loadstone.http import HttpClient
from loadstone.http._body import WINDOW


class Server:
    """Answers every request on a kept-alive connection with the same prepared bytes."""

    def __init__(self, size: int) -> None:
        self.reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"\x5a" * size
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept)
        accept.start()
        self.threads.append(accept)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(sock,))
            thread.start()
            self.threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.1)
        buf = b""
        with sock:
            while not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    sock.sendall(self.reply)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=31)
    args = parser.parse_args()
    size = int(args.size_mb * 1024 * 1024)

    server = Server(size)
    url = f"http://127.0.0.1:{server.port}/body"
    pool = urllib3.PoolManager(maxsize=2)
    client = HttpClient()

    def data() -> int:
        resp = pool.request("GET", url, preload_content=False)
        body = resp.data
        resp.release_conn()
        return len(body)

    def readinto() -> int:
        resp = pool.request("GET", url, preload_content=False)
        buf = bytearray(size)
        view = memoryview(buf)
        pos = 0
        while pos < size:
            n = resp.readinto(view[pos : pos + WINDOW])
            if not n:
                raise RuntimeError("short body")
            pos += n
        del view
        resp.release_conn()
        return pos

    def via_loadstone() -> int:
        return len(client.get(url).content)

    ways: dict[str, Callable[[], int]] = {"data": data, "readinto": readinto, "loadstone": via_loadstone}
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for fn in ways.values():  # warm up pools and page cache
            assert fn() == size
        for _ in range(args.runs):
            for name, fn in ways.items():
                started = time.perf_counter()
                got = fn()
                times[name].append(time.perf_counter() - started)
                assert got == size
    finally:
        client.close()
        pool.clear()
        server.close()

    base = statistics.median(times["data"])
    print(f"body {size / 2**20:.1f} MiB, median of {args.runs} runs, window {WINDOW // 1024} KiB")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<10} {median * 1000:8.2f} ms  {size / median / 2**30:6.2f} GiB/s"
            f"  ratio data/{name} = {base / median:.2f}x"
        )


if __name__ == "__main__":
    main()
