"""The conformance suite's fixtures: a `store` opened through `open_store` from the shared
`store_url` fixture (one fresh store per test, on every configured backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from interpreter.store import Store, open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def open_another(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more stores on the same database (another worker, another process's view)."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(store_url))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()
