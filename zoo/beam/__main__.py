"""`python -m zoo.beam`: batch predictions on Apache Beam (see zoo.beam.pipeline)."""

import sys

from zoo.beam import require_beam

require_beam()

from zoo.beam.pipeline import main  # noqa: E402  (after the check that says how to install Beam)

sys.exit(main())
