"""Shared helpers: where the real UCI data sets live (skipping, or failing, without them), the
installed `nncli` command for subprocess tests, and matplotlib for the picture tests."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NNCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRE_SHARED = os.environ.get("NNCLI_REQUIRE_SHARED_DATA") == "1"
REQUIRE_PLOT = os.environ.get("NNCLI_REQUIRE_PLOT") == "1"


def shared_csv(name: str) -> Path:
    """Path of ../shared/data/<name>; skips the test when absent, fails when CI requires it."""
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"shared data set {path} is not available"
        if REQUIRE_SHARED:
            pytest.fail(message + " (NNCLI_REQUIRE_SHARED_DATA=1)")
        pytest.skip(message)
    return path


def require_matplotlib():
    """Skip a picture test without matplotlib (the plot extra); fail instead when CI requires it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        message = "matplotlib (pip install 'nncli[plot]') is not installed"
        if REQUIRE_PLOT:
            pytest.fail(message + " (NNCLI_REQUIRE_PLOT=1)")
        pytest.skip(message)


# colour switches a CI runner may set; the tests check the default for output that is not a terminal
ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                                                        "NO_COLOR", "CLICOLOR_FORCE")}

def nncli_exe() -> str:
    exe = shutil.which("nncli")
    if exe is None:
        pytest.fail("the nncli command is not on PATH (pip install -e .)")
    return exe


def nncli_cmd(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed `nncli` command."""
    return subprocess.run([nncli_exe(), *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd,
                          timeout=300)


def nncli_many(commands: dict) -> dict:
    """Run several `nncli` commands side by side (each spends most of a second on imports)."""
    procs = {name: subprocess.Popen([nncli_exe(), *map(str, args)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=ENV)
             for name, args in commands.items()}
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done
