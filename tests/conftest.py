"""Suite-wide fixtures: a mock upstream shared by every test that needs one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import mock_upstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    with mock_upstream() as url:
        yield url
