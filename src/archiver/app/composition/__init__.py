"""The composition root: settings read once from the environment (every default is defined
in `settings.py`, nowhere else), the one dependency-injector container that wires adapters to
the worker, the start-up checks of the deployment, logging and the allocator.

May import every other package of the app and the adapters; nothing imports it but the command
line (and the tests and benchmarks, which build what production builds).
"""
