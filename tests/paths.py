"""Where tests find their inputs."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# `shared/` lies beside every clone (CI's too); a missing sample is a failure, never a skip.
SAMPLES_DIR = Path(os.environ.get("ACTIVE_SESSIONS_SAMPLES", PROJECT_ROOT.parent / "shared" / "samples"))


def sample(name: str) -> Path:
    path = SAMPLES_DIR / name
    assert path.is_file(), f"missing test input {path}: ../shared/samples must lie beside the clone"
    return path
