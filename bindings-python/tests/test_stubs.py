"""The type stubs agree with the compiled module, and typed code checks against them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],  # its cache goes to the temporary cwd
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_stubs_match_the_compiled_module(tmp_path):
    result = mypy(tmp_path, "mypy.stubtest", "hubbub._native")
    assert result.returncode == 0, result.stdout + result.stderr


def test_typed_code_checks_against_the_installed_package(tmp_path):
    result = mypy(tmp_path, "mypy", "--strict", str(HERE / "typed_usage.py"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mistakes_are_caught(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import hubbub\n"
        "p = hubbub.Publisher()\n"
        "p.publish(1, {})\n"
        "p.direkt({}, user='u')\n"
        "n: str = p.info()['uptime_s']\n"
        "p.history('c', limit='10')\n"
        "o: str = p.history('c')['offset']\n"
        "u: str = p.presence('c')['clients'][0]['user']\n"
    )
    result = mypy(tmp_path, "mypy", "--strict", str(wrong))
    assert result.returncode == 1
    assert "wrong.py:3" in result.stdout and "wrong.py:4" in result.stdout
    for line in range(5, 9):
        assert f"wrong.py:{line}" in result.stdout, result.stdout
