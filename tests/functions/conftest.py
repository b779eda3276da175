"""Entry-point tests load `functions/*` by path: they are Lambda code directories, not packages.

The core package lives in layers/common (a layer in AWS); it is put on sys.path when it is not
installed, as the layer puts it on Lambda's.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "common"

if importlib.util.find_spec("lockgate") is None:
    sys.path.insert(0, str(LAYER))


def load_entry(relative: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def entry_loader() -> Callable[[str, str], ModuleType]:
    return load_entry


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
