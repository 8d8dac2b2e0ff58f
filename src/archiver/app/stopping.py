"""How soon a wait anywhere in the process notices a stop: the one interval every loop that
watches a stop or cancel event polls at (the worker's loop, its long poll, start-up, a job
waiting for its last sources to be sized, the command line's main thread)."""

from __future__ import annotations

STOP_POLL_SECONDS = 0.1
