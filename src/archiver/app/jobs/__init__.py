"""The use case: one job message in, what to do with it out.

`answer.Jobs.answer` reads the job (an offloaded body too: `resolve.read_job`), resolves its
file list and prefixes (`resolve.resolve`), plans it (`domain.plan`), builds the archive once
(`service.ArchiveService.build`: an earlier attempt's archive reused, stale uploads aborted,
streaming where the store refuses copies), links to it, writes the full report when the
notification had to cut a list, and returns a `Reply`, `Retry` or `Release`.

May import the engine and the domain; knows no queue but the message it is given.
"""
