"""The fixture the better-auth client tests share: node, or a skip that says why."""

import shutil

import pytest

from tests.better_auth import node_missing


@pytest.fixture(scope="session")
def node():
    missing = node_missing()
    if missing:
        pytest.skip(missing)
    return shutil.which("node")
