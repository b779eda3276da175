"""An in-process model run by llama.cpp: the embedded default needs no network and no keys."""

from lockgate.providers.local.provider import LocalProvider, bundled_model_path

__all__ = ["LocalProvider", "bundled_model_path"]
