"""hubbub.verify_hook / hubbub.sign_hook: the signatures of the hub's hook requests, and
hubbub.pattern_matches, the hub's channel patterns."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

import hubbub

SECRET = "hook-secret"
BODY = b'{"client":"c","ip":"127.0.0.1","headers":{}}'


def test_the_documented_signature():
    # docs/protocol.md's vector, and the standard library's HMAC of "<timestamp>.<body>".
    signature = hubbub.sign_hook("secret", 1700000000, b"{}")
    assert signature == "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert hubbub.sign_hook(SECRET, 1700000000, BODY) == f"sha256={expected}"
    # str and bytes are the same secret; a str body is its UTF-8 bytes.
    assert hubbub.sign_hook(SECRET.encode(), 1, BODY.decode()) == hubbub.sign_hook(SECRET, 1, BODY)
    assert hubbub.HOOK_TIMESTAMP_HEADER == "X-Hubbub-Timestamp"
    assert hubbub.HOOK_SIGNATURE_HEADER == "X-Hubbub-Signature"
    assert hubbub.HOOK_MAX_AGE == 300


def test_a_good_request_holds():
    now = int(time.time())
    signature = hubbub.sign_hook(SECRET, now, BODY)
    assert hubbub.verify_hook(SECRET, str(now), signature, BODY) is None
    assert hubbub.verify_hook(SECRET, str(now), signature, bytearray(BODY)) is None
    # Within five minutes either way of the receiver's clock.
    for then in (now - 300, now + 300):
        hubbub.verify_hook(SECRET, str(then), hubbub.sign_hook(SECRET, then, BODY), BODY, now=now)
    hubbub.verify_hook(SECRET, "1000", hubbub.sign_hook(SECRET, 1000, BODY), BODY, now=1000.7)


def refusal(*args, **kwargs) -> hubbub.AccessDenied:
    with pytest.raises(hubbub.AccessDenied) as caught:
        hubbub.verify_hook(*args, **kwargs)
    e = caught.value
    assert isinstance(e, hubbub.HubbubError)
    assert e.code == "ACCESS_DENIED"
    assert str(e) == f"ACCESS_DENIED: {e.reason}"
    return e


def test_refusals_say_why():
    now = 1700000000
    ts = str(now)
    good = hubbub.sign_hook(SECRET, now, BODY)
    assert refusal(SECRET, ts, good, BODY + b" ", now=now).reason == "bad signature"
    assert refusal("other", ts, good, BODY, now=now).reason == "bad signature"
    assert refusal(SECRET, str(now + 1), good, BODY, now=now).reason == "bad signature"
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert refusal(SECRET, ts, tampered, BODY, now=now).reason == "bad signature"
    assert refusal(SECRET, ts, good[len("sha256=") :], BODY, now=now).reason == (
        "the signature is not sha256=<hex>"
    )
    not_hex = refusal(SECRET, ts, "sha256=zz", BODY, now=now).reason
    assert not_hex == "the signature is not sha256=<hex>"
    assert refusal(SECRET, "soon", good, BODY, now=now).reason == (
        "the timestamp is not a number of seconds"
    )
    assert refusal(SECRET, None, good, BODY, now=now).reason == "no X-Hubbub-Timestamp header"
    assert refusal(SECRET, ts, None, BODY, now=now).reason == "no X-Hubbub-Signature header"
    # A replay: a request signed 301 seconds ago, its signature good.
    stale = refusal(SECRET, ts, good, BODY, now=now + 301).reason
    assert stale is not None and "301s away from now" in stale
    # Nothing of the secret or of the expected signature is in the message.
    expected_hex = good[len("sha256=") :]
    for e in (refusal(SECRET, ts, tampered, BODY, now=now), refusal("x", ts, good, BODY, now=now)):
        assert SECRET not in str(e) and expected_hex not in str(e)


def test_arguments():
    with pytest.raises(ValueError, match="the hook secret is empty"):
        hubbub.verify_hook("", "1", "sha256=00", b"")
    with pytest.raises(ValueError, match="the hook secret is empty"):
        hubbub.sign_hook(b"", 1, b"")
    with pytest.raises(ValueError):
        hubbub.verify_hook(SECRET, "1", "sha256=00", b"", now=-1)
    with pytest.raises(ValueError):
        hubbub.verify_hook(SECRET, "1", "sha256=00", b"", now=float("nan"))
    with pytest.raises(TypeError):
        hubbub.verify_hook(SECRET, "1", "sha256=00", {"not": "a body"})
    with pytest.raises(TypeError):
        hubbub.sign_hook(SECRET, 1.5, b"")  # a timestamp is whole seconds
    with pytest.raises(OverflowError):
        hubbub.sign_hook(SECRET, -1, b"")


def test_patterns_match_as_the_hub_matches_them():
    cases = [
        ("room:*", "room:1", True),
        ("room:*", "room:", True),
        ("room:*", "room", False),
        ("*", "anything", True),
        ("a*b*c", "a-b-c", True),
        ("a*b*c", "a-c", False),
        ("room:1", "room:1", True),
        ("room:1", "room:10", False),
        ("room:?", "room:1", False),  # only * is special
    ]
    for pattern, channel, matches in cases:
        assert hubbub.pattern_matches(pattern, channel) is matches, (pattern, channel)
