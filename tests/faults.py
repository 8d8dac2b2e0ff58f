"""A fault-injecting HTTP proxy for tests: sits in front of the S3/SQS endpoint on 127.0.0.1.

Rules match a request by method, path and query (regular expressions) and answer it with an
error, a stall, or a response cut mid-body, a given number of times; everything else is
forwarded unchanged (the Host header too, so signatures still match).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
NOT_IMPLEMENTED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
    b"<Message>A header you provided implies functionality that is not implemented.</Message>"
    b"</Error>"
)
INTERNAL = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
ERRORS = {"503": SLOW_DOWN, "500": INTERNAL, "501": NOT_IMPLEMENTED, "403": ACCESS_DENIED}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class Fault:
    action: str  # "503", "500", "stall" (delay, then forward), "cut" (half the body, then close)
    # "empty" (200 with no body: a reply cut short before its document), or "501" (an S3-like
    # store without the operation: NotImplemented)
    method: str = ".*"
    path: str = ".*"
    query: str = ".*"
    target: str = ".*"  # X-Amz-Target: the operation of a JSON-protocol request (SQS);
    # "UploadPartCopy" for an S3 request with x-amz-copy-source
    times: int = 1  # -1: every time
    delay: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str, query: str, target: str) -> bool:
        return (
            self.times != 0
            and re.fullmatch(self.method, method) is not None
            and re.search(self.path, path) is not None
            and re.search(self.query, query) is not None
            and re.search(self.target, target) is not None
        )


@dataclass
class FaultProxy:
    upstream: str
    url: str = ""
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent_bytes: int = 0  # request bodies relayed to the store
    read_bytes: int = 0  # response bodies relayed back
    requester_pays: frozenset[str] = frozenset()
    """Buckets that behave as Requester Pays buckets do on AWS (LocalStack and moto only
    record the setting): a request on one, or a copy from one, without
    `x-amz-request-payer: requester` is refused 403 AccessDenied."""
    unpaid: int = 0  # requests so refused

    def refuses_unpaid(self, path: str, copy_source: str, payer: str) -> bool:
        if payer.lower() == "requester":
            return False
        named = {path.lstrip("/").split("/", 1)[0], copy_source.lstrip("/").split("/", 1)[0]}
        if named & self.requester_pays:
            with self.lock:
                self.unpaid += 1
            return True
        return False

    def count(self, sent: int, read: int) -> None:
        with self.lock:
            self.sent_bytes += sent
            self.read_bytes += read

    def add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def take(self, method: str, path: str, query: str, target: str = "") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path, query, target):
                    fault.hits += 1
                    if fault.times > 0:
                        fault.times -= 1
                    self.log.append((method, path, query, fault.action))
                    return fault
            self.log.append((method, path, query, "forward"))
            return None


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _error(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _relay(self) -> None:
            body = self._body()
            path, _, query = self.path.partition("?")
            target = self.headers.get("X-Amz-Target", "")
            if "x-amz-copy-source" in self.headers:
                target = "UploadPartCopy"
            payer = self.headers.get("x-amz-request-payer", "")
            copy_source = self.headers.get("x-amz-copy-source", "")
            if proxy.refuses_unpaid(path, copy_source, payer):
                self._error(403, ACCESS_DENIED)
                return
            fault = proxy.take(self.command, path, query, target)
            if fault is not None and fault.action in ERRORS:
                self._error(int(fault.action), ERRORS[fault.action])
                return
            if fault is not None and fault.action == "empty":
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault is not None and fault.action == "stall":
                time.sleep(fault.delay)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            proxy.count(len(body), len(payload))
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(payload)))
            if fault is not None and fault.action == "cut":
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
