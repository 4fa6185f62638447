"""Shared fixtures for the system tests: the built binary and helpers to run it."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RAMPART_BUILD", ROOT / "build"))
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def rampart():
    """Path of the rampart binary under test."""
    path = BUILD / "rampart"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make` first")
    return str(path)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture
def run(rampart):
    """run(*args, input=None, timeout=30) -> CompletedProcess with text output."""

    def _run(*args, input=None, timeout=30, env=None):
        return subprocess.run(
            [rampart, *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    return _run
