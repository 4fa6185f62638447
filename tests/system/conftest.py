"""Shared fixtures for the system tests: the built binary and helpers to run it."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RAMPART_BUILD", ROOT / "build"))
SHARED = ROOT.parent / "shared"

# http mode has two I/O paths (`lb.io-uring`): these modules run every test on both
LB_BOTH_PATHS = {"test_lb_http", "test_lb_limits", "test_lb_segments", "test_lb_ops",
                 "test_lb_balance", "test_lb_battery", "test_lb_defects"}


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__ in LB_BOTH_PATHS:
        metafunc.parametrize("lb_io_path", [True, False], ids=["io_uring", "epoll"],
                             indirect=True)


@pytest.fixture(autouse=True)
def lb_io_path(request):
    """The `lb.io-uring` value every Lb of the test gets unless it sets one (None: none)."""
    import lbutil
    lbutil.IO_URING = getattr(request, "param", None)
    yield lbutil.IO_URING
    lbutil.IO_URING = None


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
