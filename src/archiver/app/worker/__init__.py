"""The worker's loop: it knows queues, signals and ECS, and nothing of archives.

`loop.Worker.run` long-polls the source queue (`polling.py`, which a stop never waits out),
runs up to `WORKER_CONCURRENCY` jobs, keeps each job's message hidden (`heartbeat.py`), hands
each message to `Jobs.answer` with its progress tracker (`progress.py`: logs and `running`
notifications) and the cancel event of the shutdown grace period (`grace.py`), then carries
out the answer: publish and delete, back off and redeliver, or release. `ops.py` tells ECS
(liveness file, EMF metrics, scale-in protection).

May import `jobs.answer` (the use case's interface), `stopping` and the domain; never the
engine.
"""
