"""An answer stream its reader may drop at any moment (issue 22): /v1 (rag.serve.openai_api) and the web chat
(rag.serve.web) both read Pipeline.ask_stream through `Stoppable`.

Pipeline.ask_stream runs in the thread that reads it and yields only verified sentences, which may come
seconds apart while the model writes one. A reader that goes away in between must not wait for the next
one: `close()`, from any thread, sets the cancel event the pipeline checks at each model token, then closes
the generator chain (pipeline -> model stream, which releases the model) as soon as the read in progress
returns, in a helper thread if a read is in progress. `polled()` is for readers that can only notice they
are gone between two yields (a Gradio generator): it yields None whenever nothing came for a while.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

END = object()  # the stream ended (after its Answer, or cancelled)


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Stoppable:
    """`start(cancel)` -> the stream (e.g. lambda cancel: pipeline.ask_stream(q, cancel=cancel)), read one
    piece at a time with read(); close() stops it (idempotent) and then calls `on_closed` once."""

    def __init__(self, start: Callable[[threading.Event], Iterator], on_closed: Callable[[], object] | None = None):
        self.cancel = threading.Event()
        self.pieces = start(self.cancel)
        self._on_closed = on_closed
        self._reading = threading.Lock()  # a read and the close never overlap ("generator already executing")
        self._closing = threading.Lock()
        self._closed = False

    def read(self):
        """The next piece, or END once the stream is over or closed. Blocks: call it from a worker thread."""
        with self._reading:
            return END if self.cancel.is_set() else next(self.pieces, END)

    def close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
        self.cancel.set()
        if self._reading.acquire(blocking=False):  # no read in progress: close now
            self._reading.release()
            self._finish()
        else:  # a read is in progress in another thread: it returns at the model's next token
            threading.Thread(target=self._finish, name="rag-close-stream", daemon=True).start()

    def _finish(self) -> None:
        try:
            with self._reading:
                self.pieces.close()
        finally:
            if self._on_closed is not None:
                self._on_closed()

    def polled(self, every: float) -> Iterator:
        """The pieces, read in a helper thread, with None yielded whenever `every` seconds pass without one:
        a caller that can only be stopped between two of its own yields gets to yield that often. Ends at
        END; an exception from the stream is raised here. Closing this generator closes the stream."""
        pieces: queue.SimpleQueue = queue.SimpleQueue()

        def pump() -> None:
            try:
                piece = None
                while piece is not END:
                    piece = self.read()
                    pieces.put(piece)
            except BaseException as e:  # noqa: BLE001 -- handed to the reader's thread, raised there
                pieces.put(_Failure(e))

        threading.Thread(target=pump, name="rag-answer", daemon=True).start()
        try:
            while True:
                try:
                    piece = pieces.get(timeout=every)
                except queue.Empty:
                    yield None
                    continue
                if piece is END:
                    return
                if isinstance(piece, _Failure):
                    raise piece.error
                yield piece
        finally:
            self.close()
