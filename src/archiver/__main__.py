"""`python -m archiver` runs the worker, like the container's command."""

import sys

from archiver.app.cli import main

sys.exit(main(sys.argv[1:] or ["worker"]))
