"""Where the build reads and writes: the repository, ``dist/`` and the cache.

Outputs go to ``dist/``; everything reusable (root filesystem tarballs, pip's cache, work trees,
logs) goes to the cache: ``$K3PY_CACHE_DIR``, else ``$XDG_CACHE_HOME/k3py``, else ``.cache/k3py``
in the repository. Nothing is ever written into ``build/``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"


def cache_dir() -> Path:
    """The build cache's root directory (not created here)."""
    if explicit := os.environ.get("K3PY_CACHE_DIR"):
        return Path(explicit)
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "k3py"
    return ROOT / ".cache" / "k3py"
