"""`python -m archiver` runs the worker, like the container's command."""

import sys

from archiver.app.cli import run

run(sys.argv[1:] or ["worker"])
