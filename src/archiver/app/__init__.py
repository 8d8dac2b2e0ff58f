"""The application: where archiver's domain meets its adapters, and a job gets done.

    composition/  settings (the one home of every default), the container, start-up checks,
                  logging, the allocator: what `archiver` runs before the first job
    worker/       the loop: receive, keep hidden, carry out the answer, stop, ECS signals
    jobs/         the use case: `Jobs.answer(message, progress, cancel)` and its steps
    engine/       the archive engine: sources sized, fetched, zipped and uploaded
    cli/          the command line
    stopping.py   how soon any wait notices a stop

Arrows point down that list and inward: composition wires the others; worker imports jobs
(never the engine); jobs imports the engine; the engine imports only the domain. A job's path:
`worker.loop.Worker.run` receives it, `jobs.answer.Jobs.answer` reads, plans (`jobs.resolve`,
`domain.plan`) and builds it (`jobs.service`, then `engine.archive.write_archive`), and the loop
publishes the notification the answer holds and deletes the message.
"""
