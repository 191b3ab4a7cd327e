import pytest

from sparsevit.schemes import ClassInfo, ClassScheme


@pytest.fixture
def scheme() -> ClassScheme:
    """Three classes with a gap in the values and a name with '&' (XML/QML escaping)."""
    return ClassScheme("test", "test", (ClassInfo(0, "Water", "#0000ff"), ClassInfo(1, "Forest", "#009900"),
                                        ClassInfo(3, "Built-up & roads", "#ff0000")))
