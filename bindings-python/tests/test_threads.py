"""One Publisher shared by threads; kept-alive connections; a Publisher across fork()."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Set

import hubbub
from conftest import WAIT


def test_threads_share_one_publisher(hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("threads")
    p = hubbub.Publisher(hub.url)
    threads, calls = 8, 150
    errors = []

    def work(t: int) -> None:
        try:
            for i in range(calls):
                assert p.publish("threads", {"t": t, "i": i}) == {"published": "threads"}
        except BaseException as e:  # reported below, in the test's own thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors
    seen = defaultdict(list)
    for _ in range(threads * calls):
        data = browser.recv()["message"]["data"]
        seen[data["t"]].append(data["i"])
    # Everything arrived, and each thread's publications in the order it made them.
    assert seen == {t: list(range(calls)) for t in range(threads)}


def sockets_to(port: int) -> Set[int]:
    """The inodes of this process's established TCP connections to `port` (Linux)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(int(target[8:-1]))
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            inode = int(fields[9])
            if remote_port == port and established and inode in mine:
                found.add(inode)
    return found


def test_connections_are_kept_alive_and_reused(start_hub):
    hub = start_hub()
    p = hubbub.Publisher(hub.url)
    p.publish("reuse", 0)
    first = sockets_to(hub.port)
    assert len(first) == 1
    for i in range(300):
        p.publish("reuse", i)
    p.info()
    p.channels()
    # Another Publisher on this thread shares the thread's pool.
    hubbub.Publisher(hub.url).publish("reuse", "other")
    assert sockets_to(hub.port) == first


def test_publishers_work_after_fork(hub, ws):
    """Celery's prefork pool and gunicorn --preload fork after the parent has published."""
    browser = ws(hub.ws_url)
    browser.subscribe("forked")
    p = hubbub.Publisher(hub.url)
    ap = hubbub.AsyncPublisher(hub.url)
    p.publish("forked", "parent before")
    asyncio.run(ap.publish("forked", "parent before, async"))
    assert browser.recv()["message"]["data"] == "parent before"
    assert browser.recv()["message"]["data"] == "parent before, async"
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        pid = os.fork()
    if pid == 0:  # the child: publish with the parent's publishers, report through the pipe
        try:
            p.publish("forked", "child")
            asyncio.run(ap.publish("forked", "child, async"))
            os.write(write_end, b"ok")
        except BaseException as e:
            os.write(write_end, repr(e).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], WAIT)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        report = os.read(read_end, 1000) if ready else b"the child hung"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert report == b"ok"
    assert browser.recv()["message"]["data"] == "child"
    assert browser.recv()["message"]["data"] == "child, async"
    p.publish("forked", "parent after")
    asyncio.run(ap.publish("forked", "parent after, async"))
    assert browser.recv()["message"]["data"] == "parent after"
    assert browser.recv()["message"]["data"] == "parent after, async"


def test_a_call_made_while_another_is_being_prepared(hub, ws):
    """Python code runs while a call reads its arguments (here a sequence's __getitem__;
    in life, a __del__ set off by the garbage collector) and may publish itself."""
    browser = ws(hub.ws_url)
    browser.subscribe("reentrant")
    p = hubbub.Publisher(hub.url)

    class Channels:
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> str:
            if i:
                raise IndexError(i)
            p.publish("reentrant", "inner")
            return "reentrant"

    assert p.broadcast(Channels(), "outer") == {"published": ["reentrant"]}
    assert browser.recv()["message"]["data"] == "inner"
    assert browser.recv()["message"]["data"] == "outer"
