"""The test suite: folders mirror the source tree (warehouse/, ingest/, queries/, benchmarks/);
`integration/` holds tests across layers and `fixtures/` the data builders tests share."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
# The real released files beside the repository (see its README); tests that need them skip.
SHARED_DATA = Path(os.environ.get("RADGENOME_SHARED_DATA", ROOT.parent / "shared" / "data"))
