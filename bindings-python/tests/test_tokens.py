"""hubbub.token / hubbub.verify_token, and a token authenticating a real WebSocket client."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time

import pytest

import hubbub
from conftest import TOKEN_SECRET


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_standard_hs256_jwt():
    t = hubbub.token(TOKEN_SECRET, "42", read=["room:*"], write=("room:1",), info={"name": "ann"})
    header, payload, signature = t.split(".")
    assert json.loads(b64decode(header)) == {"typ": "JWT", "alg": "HS256"}
    # Checked here with the standard library alone, not with hubbub's code.
    expected = hmac.new(TOKEN_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    assert b64decode(signature) == expected.digest()
    claims = json.loads(b64decode(payload))
    now = int(time.time())
    assert claims["sub"] == "42"
    assert claims["read"] == ["room:*"] and claims["write"] == ["room:1"]
    assert claims["info"] == {"name": "ann"}
    assert abs(claims["iat"] - now) <= 2
    assert claims["exp"] - claims["iat"] == 3600
    assert hubbub.verify_token(TOKEN_SECRET, t) == claims


def test_arguments():
    v = hubbub.verify_token
    assert v(TOKEN_SECRET, hubbub.token(TOKEN_SECRET, 7))["sub"] == "7"
    assert v(b"bytes secret", hubbub.token("bytes secret", "u"))["sub"] == "u"
    claims = v("s", hubbub.token("s", "u", expires_in=datetime.timedelta(minutes=2)))
    assert claims["exp"] - claims["iat"] == 120
    assert v("s", hubbub.token("s", "u"))["read"] == []
    forever = hubbub.token("s", "u", expires_in=None)
    with pytest.raises(hubbub.InvalidCredentials, match="exp"):
        v("s", forever)
    assert "exp" not in v("s", forever, require_exp=False)
    with pytest.raises(TypeError):
        hubbub.token("s", "u", read="room:*")  # one str is not a list of patterns
    with pytest.raises(TypeError):
        hubbub.token("s", None)
    with pytest.raises(TypeError):
        hubbub.token("s", "u", info=["not", "a", "dict"])
    with pytest.raises(TypeError):
        hubbub.token("s", "u", info={"x": object()})
    with pytest.raises(ValueError):
        hubbub.token("", "u")
    with pytest.raises(ValueError):
        hubbub.token("s", "")
    with pytest.raises(hubbub.InvalidCredentials):
        v("s", "not.a.token")
    with pytest.raises(hubbub.TokenExpired):
        v("s", hubbub.token("s", "u", expires_in=-1))


def test_token_authenticates_a_websocket_client(hub, ws):
    t = hubbub.token(
        TOKEN_SECRET, "ann", read=["room:*"], write=["room:1"], info={"name": "Ann"}
    )
    browser = ws(hub.ws_url)
    assert browser.authenticate(t) == {"authenticated": "ann"}
    browser.subscribe("room:1")
    # The token's read patterns replace the anonymous ones.
    assert browser.command({"subscribe": {"channel": "lobby"}})["err"] == "ACCESS_DENIED"

    hubbub.Publisher(hub.url).publish("room:1", {"text": "from Django"}, event="chat")
    assert browser.recv() == {
        "message": {"channel": "room:1", "event": "chat", "data": {"text": "from Django"}}
    }
    # Its write patterns let it broadcast to room:1, and nowhere else.
    browser.send({"broadcast": {"event": "chat", "channel": "room:1", "data": "hi"}})
    # The answer and the sender's own copy of the message, in either order.
    frames = [browser.recv(), browser.recv()]
    assert {"broadcasted": "room:1"} in frames
    assert {"message": {"channel": "room:1", "event": "chat", "data": "hi", "from": "ann"}} in frames
    assert browser.command(
        {"broadcast": {"event": "chat", "channel": "room:2", "data": "no"}}
    )["err"] == "ACCESS_DENIED"


def test_tokens_the_hub_refuses(hub, ws):
    browser = ws(hub.ws_url)
    expired = hubbub.token(TOKEN_SECRET, "ann", expires_in=-1)
    assert browser.authenticate(expired)["err"] == "TOKEN_EXPIRED"
    forged = hubbub.token("not the hub's secret", "ann")
    assert browser.authenticate(forged)["err"] == "INVALID_CREDENTIALS"
