"""Every error class, each provoked against a real hub (or a port where no hub answers)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

import hubbub
from conftest import TOKEN_SECRET

PROTOCOL_CLASSES = {
    hubbub.InvalidPayload: "INVALID_PAYLOAD",
    hubbub.InvalidCredentials: "INVALID_CREDENTIALS",
    hubbub.TokenExpired: "TOKEN_EXPIRED",
    hubbub.AccessDenied: "ACCESS_DENIED",
    hubbub.InvalidClient: "INVALID_CLIENT",
    hubbub.InvalidChannel: "INVALID_CHANNEL",
    hubbub.LimitExceeded: "LIMIT_EXCEEDED",
}


def test_the_classes():
    for cls, code in PROTOCOL_CLASSES.items():
        assert issubclass(cls, hubbub.HubbubError) and cls.code == code
        assert cls.__module__ == "hubbub" and cls.__doc__
    assert issubclass(hubbub.Unavailable, hubbub.HubbubError)
    assert issubclass(hubbub.Timeout, hubbub.Unavailable)
    # One name for every failure to get a hub's answer; Timeout tells one of them apart.
    assert (hubbub.Unavailable.code, hubbub.Timeout.code) == ("UNAVAILABLE", "UNAVAILABLE")
    assert issubclass(hubbub.HubbubError, Exception) and hubbub.HubbubError.code is None


def check(err, cls, code, status, path):
    assert type(err) is cls
    assert (err.code, err.status) == (code, status)
    assert err.url.endswith(path)
    assert code in str(err) and err.url in str(err)


def test_invalid_credentials(start_hub, monkeypatch):
    hub = start_hub("--api-keys", "key-one,key-two")
    for key in [None, "wrong"]:
        with pytest.raises(hubbub.InvalidCredentials) as e:
            hubbub.Publisher(hub.url, api_key=key).publish("c", 1)
        check(e.value, hubbub.InvalidCredentials, "INVALID_CREDENTIALS", 401, "/api/publish")
    assert hubbub.Publisher(hub.url, api_key="key-two").publish("c", 1) == {"published": "c"}
    monkeypatch.setenv("HUBBUB_API_KEY", "key-one")
    assert hubbub.Publisher(hub.url).channels() == {"channels": {}}


def test_access_denied(start_hub):
    hub = start_hub("--allowed-ips", "10.0.0.0/8")
    with pytest.raises(hubbub.AccessDenied) as e:
        hubbub.Publisher(hub.url).info()
    check(e.value, hubbub.AccessDenied, "ACCESS_DENIED", 403, "/api/info")


def test_invalid_payload(hub):
    p = hubbub.Publisher(hub.url)
    with pytest.raises(hubbub.InvalidPayload) as e:
        p.publish("not a channel name", 1)
    check(e.value, hubbub.InvalidPayload, "INVALID_PAYLOAD", 400, "/api/publish")
    assert e.value.reason  # the hub says what is wrong
    with pytest.raises(hubbub.InvalidPayload):
        p.broadcast([], 1)
    with pytest.raises(hubbub.InvalidPayload):
        p.publish("x" * 256, 1)


def test_invalid_client(hub):
    with pytest.raises(hubbub.InvalidClient) as e:
        hubbub.Publisher(hub.url).direct({"to": "nobody"}, client="no-such-client")
    check(e.value, hubbub.InvalidClient, "INVALID_CLIENT", 404, "/api/direct")
    with pytest.raises(hubbub.InvalidClient):
        hubbub.Publisher(hub.url).direct(1, user="no-such-user")


def test_invalid_channel(hub):
    # The hub keeps no history or presence for any channel: it has no namespaces.
    p = hubbub.Publisher(hub.url)
    with pytest.raises(hubbub.InvalidChannel) as e:
        p.history("room:1", limit=10)
    check(e.value, hubbub.InvalidChannel, "INVALID_CHANNEL", 404, "/api/history/room:1?limit=10")
    with pytest.raises(hubbub.InvalidChannel) as e:
        p.presence("room:1")
    check(e.value, hubbub.InvalidChannel, "INVALID_CHANNEL", 404, "/api/presence/room:1")


def test_limit_exceeded(start_hub):
    hub = start_hub("--max-message-size", "1024")
    p = hubbub.Publisher(hub.url)
    assert p.publish("big", "x" * 900) == {"published": "big"}
    with pytest.raises(hubbub.LimitExceeded) as e:
        p.publish("big", "x" * 2000)
    check(e.value, hubbub.LimitExceeded, "LIMIT_EXCEEDED", 413, "/api/publish")


def test_token_errors():
    t = hubbub.token(TOKEN_SECRET, "42")
    with pytest.raises(hubbub.InvalidCredentials) as e:
        hubbub.verify_token("another secret", t)
    assert (e.value.code, e.value.status, e.value.url) == ("INVALID_CREDENTIALS", None, None)
    with pytest.raises(hubbub.TokenExpired) as e:
        hubbub.verify_token(TOKEN_SECRET, hubbub.token(TOKEN_SECRET, "42", expires_in=-5))
    assert e.value.code == "TOKEN_EXPIRED"


def test_unavailable(unused_url):
    p = hubbub.Publisher(unused_url)
    for call in [lambda: p.publish("c", 1), p.info, p.channels]:
        with pytest.raises(hubbub.Unavailable) as e:
            call()
        assert type(e.value) is hubbub.Unavailable
        assert e.value.code == "UNAVAILABLE"
        assert unused_url in str(e.value) and e.value.url.startswith(unused_url)
        assert "refused" in str(e.value).lower()


def test_unknown_host_is_unavailable():
    with pytest.raises(hubbub.Unavailable, match="no-such-host.invalid"):
        hubbub.Publisher("http://no-such-host.invalid:9772", timeout=5).publish("c", 1)


def test_timeout_raises_and_releases_the_gil(silent_url):
    p = hubbub.Publisher(silent_url, timeout=0.5)
    longest_pause = 0.0
    stop = threading.Event()

    def run_alongside() -> None:
        # Another Python thread, noting how long it is ever kept from running.
        nonlocal longest_pause
        last = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            longest_pause = max(longest_pause, now - last)
            last = now

    other = threading.Thread(target=run_alongside)
    other.start()
    started = time.monotonic()
    try:
        with pytest.raises(hubbub.Timeout) as e:
            p.publish("c", 1)
    finally:
        elapsed = time.monotonic() - started
        stop.set()
        other.join()
    assert 0.45 <= elapsed < 3.0
    assert isinstance(e.value, hubbub.Unavailable) and e.value.code == "UNAVAILABLE"
    assert silent_url in str(e.value)
    # Had the call held the GIL while it waited, the other thread would have stood still
    # for the whole half second.
    assert longest_pause < 0.3, longest_pause


def test_errors_only_websocket_clients_meet_are_hubbub_errors(hub):
    # An unknown endpoint is UNKNOWN_COMMAND: no subclass, the name is in .code.
    with pytest.raises(hubbub.HubbubError) as e:
        hubbub.Publisher(hub.url + "/ws").info()
    assert type(e.value) is hubbub.HubbubError
    assert (e.value.code, e.value.status) == ("UNKNOWN_COMMAND", 404)


@pytest.fixture
def other_service():
    """Something at the URL that is not a hub: a plain HTTP server, e.g. a proxy's page."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = int(self.path.strip("/").split("/")[0])
            body = b"<html>not a hub</html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_answers_that_are_not_the_protocol(other_service):
    # Something that is not a hub answered: the hub is not available at that URL, as a
    # gateway saying the hub is down is the hub being down.
    for status in [200, 500, 502]:
        with pytest.raises(hubbub.Unavailable) as e:
            hubbub.Publisher(f"{other_service}/{status}").info()
        assert type(e.value) is hubbub.Unavailable
        assert (e.value.code, e.value.status) == ("UNAVAILABLE", status)
        assert "not a hub" in str(e.value) and str(status) in str(e.value)
