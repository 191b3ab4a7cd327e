import pytest

from sv_io_helpers import Scheme


@pytest.fixture
def scheme() -> Scheme:
    return Scheme()
