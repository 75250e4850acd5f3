"""Publishing to an https:// hub: the hub behind a TLS-terminating proxy, as in production."""

from __future__ import annotations

import http.client
import http.server
import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import hubbub


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A certificate authority and a certificate it signed for localhost and 127.0.0.1."""
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
            "-subj", "/CN=hubbub test CA", "-days", "2", cwd=d)  # fmt: skip
    openssl("req", *ec, "-keyout", "hub.key", "-out", "hub.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "hub.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "hub.pem", "-days", "2", "-extfile", "ext", cwd=d)  # fmt: skip
    return d


@pytest.fixture
def https_proxy(hub, certificates):
    """https://127.0.0.1:PORT, forwarding every request to the test hub over HTTP."""

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(hub.address, timeout=10)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = forward

        def log_message(self, *args) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "hub.pem", certificates / "hub.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_publish_over_https(https_proxy, certificates, hub, ws):
    browser = ws(hub.ws_url)
    browser.subscribe("tls")
    # A process that trusts the test CA, the way a deployment trusts its own: through the
    # system's certificate store, here pointed at by SSL_CERT_FILE.
    script = (
        "import sys, hubbub\n"
        "p = hubbub.Publisher(sys.argv[1])\n"
        "print(p.publish('tls', {'over': 'https'}), p.info()['version'])\n"
    )
    env = dict(os.environ, SSL_CERT_FILE=str(certificates / "ca.pem"))
    env.pop("SSL_CERT_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", script, https_proxy], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["{'published':", "'tls'}", hubbub.__version__]
    assert browser.recv()["message"]["data"] == {"over": "https"}


def test_an_untrusted_certificate_is_refused(https_proxy):
    # This process trusts only the system's authorities, which never signed the test CA.
    with pytest.raises(hubbub.Unavailable) as e:
        hubbub.Publisher(https_proxy).publish("tls", 1)
    assert https_proxy in str(e.value)
    assert "certificate" in str(e.value).lower()
