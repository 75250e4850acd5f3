"""Typed use of hubbub, checked by mypy --strict in test_stubs.py (never run)."""

import hubbub

p = hubbub.Publisher("http://127.0.0.1:9772", api_key="k", timeout=2.0)
a: str = p.publish("c", {"x": 1})["published"]
n: int = p.direct(1, user="u")["delivered"]
subs: int = p.channels()["channels"]["c"]["subscribers"]
t: str = hubbub.token("s", 42, read=["a"], expires_in=None)
claims = hubbub.verify_token("s", t)
sub: str = claims["sub"]
try:
    p.info()
except hubbub.Unavailable as e:
    code = e.code


async def main() -> None:
    async with hubbub.AsyncPublisher() as ap:
        r: str = (await ap.publish("c", [1, 2]))["published"]
        info: int = (await ap.info())["uptime_s"]

