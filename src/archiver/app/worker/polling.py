"""A long poll that a stop lets finish: what it brings goes straight back to the queue.

The receive runs on a daemon thread. The loop waits for it, watching its stop event. When it
stops first, the poll is still finished: SQS hands a message that arrives during the wait to
the poll whether or not anyone still reads the answer, and a poll walked away from would leave
that message hidden for the whole visibility timeout. A stop of an idle worker therefore takes
up to `SQS_WAIT_TIME_SECONDS`; what the poll brings is handed back (visibility 0).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, wait

import structlog

from archiver.app.stopping import STOP_POLL_SECONDS
from archiver.domain.ports import ReceivedMessage

log = structlog.get_logger(__name__)

Receive = Callable[[int], list[ReceivedMessage]]


class LongPoll:
    def __init__(self, receive: Receive, hand_back: Callable[[ReceivedMessage], None]) -> None:
        self._receive = receive
        self._hand_back = hand_back

    def start(self, count: int) -> Future[list[ReceivedMessage]]:
        poll: Future[list[ReceivedMessage]] = Future()

        def receive() -> None:
            try:
                poll.set_result(self._receive(count))
            except BaseException as error:  # handed to the loop, which decides
                poll.set_exception(error)

        threading.Thread(target=receive, name="poll", daemon=True).start()
        return poll

    @staticmethod
    def settled(poll: Future[list[ReceivedMessage]], stop: threading.Event) -> bool:
        """Wait for the poll; False if asked to stop first."""
        while not poll.done():
            if stop.wait(STOP_POLL_SECONDS):
                return poll.done()
        return True

    def finish(self, poll: Future[list[ReceivedMessage]], seconds: float) -> None:
        """Stopping while the poll is out: wait up to `seconds` for it to end, and hand back
        what it brings before returning (the process may exit next: a daemon thread's hand-back
        would die with it). A poll that outlasts the wait hands back later, if the process lives.
        """
        wait([poll], timeout=seconds)
        if poll.done():
            if poll.exception() is None:
                for message in poll.result():
                    self._hand_back(message)
            log.info("poll_finished")
            return

        def hand_back(done: Future[list[ReceivedMessage]]) -> None:
            if done.exception() is None:
                for message in done.result():
                    self._hand_back(message)

        poll.add_done_callback(hand_back)  # runs at once if it ended since the wait
        log.warning("poll_unfinished", waited_s=seconds)  # what it gives reappears later
