"""Shared fixtures: one loopback Replicate API per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clients import VALID_TOKEN

from replicate_explain._loopback import LoopbackAPI


@pytest.fixture(scope="module")
def api() -> Iterator[LoopbackAPI]:
    """A loopback stand-in for the Replicate API that accepts ``VALID_TOKEN``."""
    with LoopbackAPI(tokens={VALID_TOKEN}) as server:
        yield server
