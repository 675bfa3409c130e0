"""`python -m control_plane.sandbox.pulumi_engine <pulumi arguments>`."""

import sys

from .cli import main

sys.exit(main())
