"""Fixtures: real `hubbub` processes on ephemeral ports, and WebSocket clients for them."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
HUBBUB_BIN = os.environ.get("HUBBUB_BIN") or str(ROOT / "target" / "debug" / "hubbub")
LISTENING = re.compile(r"listening on http://([0-9.]+):([0-9]+)")
TOKEN_SECRET = "test-token-secret"
# Time limits for things that should happen at once: generous, so a loaded machine does
# not fail the suite, yet bounded, so a broken hub does not hang it.
WAIT = 10.0


class Hub:
    """One `hubbub` process, stopped with SIGTERM at the end."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
        env.setdefault("RUST_LOG", "info")
        self.process = subprocess.Popen(
            [HUBBUB_BIN, "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.log: List[str] = []
        found: "queue.Queue[Optional[str]]" = queue.Queue()

        def read() -> None:
            # Reads stderr to the end, so the hub never blocks on a full pipe.
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                m = LISTENING.search(line)
                if m:
                    found.put(f"{m.group(1)}:{m.group(2)}")
            found.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            address = found.get(timeout=30)
        except queue.Empty:
            address = None
        if address is None:
            self.stop()
            raise RuntimeError(f"hubbub did not start: {''.join(self.log)}")
        self.address = address
        self.url = f"http://{address}"
        self.ws_url = f"ws://{address}/ws"
        self.port = int(address.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    """A hub in zero-config mode that also accepts tokens signed with TOKEN_SECRET."""
    h = Hub("--token-secret", TOKEN_SECRET)
    yield h
    h.stop()


# Channels under room: keep history (their last 10 messages) and presence.
STREAMS = '[{pattern="room:*", history_size=10, presence=true}]'


@pytest.fixture(scope="session")
def streams_hub() -> Iterator[Hub]:
    """A hub in zero-config mode whose room:* channels keep history and presence."""
    h = Hub("--token-secret", TOKEN_SECRET, "--namespaces", STREAMS)
    yield h
    h.stop()


@pytest.fixture
def start_hub() -> Iterator[Any]:
    """Starts hubs with the given arguments, for the length of one test."""
    hubs: List[Hub] = []

    def start(*args: str) -> Hub:
        h = Hub(*args)
        hubs.append(h)
        return h

    yield start
    for h in hubs:
        h.stop()


class Redis:
    """One `redis-server` on a free loopback port, stopped at the end."""

    def __init__(self, *args: str) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=WAIT)


@pytest.fixture(scope="session")
def redis() -> Iterator[Redis]:
    """A `redis-server` for the tests that publish through Redis (each test uses a key
    prefix of its own)."""
    r = Redis()
    yield r
    r.stop()


class WsClient:
    """A `websockets` client speaking the hub's protocol, one JSON object per frame."""

    def __init__(self, url: str, **options: Any) -> None:
        # Entered by hand: the test's fixture closes it. `options` go to websockets'
        # connect (additional_headers, user_agent_header).
        self.conn: ClientConnection = connect(url, open_timeout=WAIT, **options).__enter__()
        self.hello: Any = self.recv()
        self.client_id: str = self.hello["connected"]["client"]

    def send(self, frame: Any) -> None:
        self.conn.send(json.dumps(frame))

    def recv(self, timeout: float = WAIT) -> Any:
        return json.loads(self.conn.recv(timeout=timeout))

    def command(self, frame: Any) -> Any:
        """Sends a command and returns its answer (answers come in order; deliveries may
        come between, and are not expected while this is used)."""
        self.send(frame)
        return self.recv()

    def subscribe(self, channel: str) -> None:
        assert self.command({"subscribe": {"channel": channel}}) == {"subscribed": channel}

    def authenticate(self, token: str) -> Any:
        return self.command({"authenticate": {"token": token}})

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def ws() -> Iterator[Any]:
    """Opens WebSocket clients, all closed at the end of the test."""
    clients: List[WsClient] = []

    def open_client(url: str, **options: Any) -> WsClient:
        c = WsClient(url, **options)
        clients.append(c)
        return c

    yield open_client
    for c in clients:
        c.close()


@pytest.fixture
def unused_url() -> str:
    """A URL on a loopback port where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL on a loopback port that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)  # never accepted: the kernel completes the handshakes, nobody reads
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
