"""Live progress of runs for event streams: one shared poller per watched run.

Before, every open event stream read the database every 250 ms: 500 streams were
2,000 reads a second, enough to starve the worker's progress writes and every
other request. Now the first stream on a run starts that run's ``RunFeed``, a
single asyncio task that reads the run (one short read session in the thread
pool, which on SQLite never takes the write lock) and wakes every stream
following it; the last stream to leave stops it. A stream that joins late (or
falls behind the window of recent epochs kept in memory) reads the epochs it
missed once, then follows the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.db import runs as run_store
from app.services import runs as run_service
from app.services.runs import RunSnapshot

#: Seconds between two reads of a watched run.
POLL_SECONDS = 0.25
#: Recent epochs a feed keeps for its streams (older ones: read from the database).
WINDOW_EPOCHS = 2000
#: Rendered updates a feed keeps for its streams.
RENDERED_KEEP = 64


@dataclass(frozen=True)
class FeedUpdate:
    """What a stream sends next: new epochs, and the run's state (None: deleted)."""

    metrics: list[tuple[int, dict[str, Any]]]
    state: RunSnapshot | None


class RunFeed:
    """The one poller of a run, and what it has seen."""

    def __init__(self, feeds: RunFeeds, run_id: str) -> None:
        self.feeds = feeds
        self.run_id = run_id
        self.state: RunSnapshot | None = None
        self.window: deque[tuple[int, dict[str, Any]]] = deque(maxlen=WINDOW_EPOCHS)
        self.last_epoch = 0
        self.version = 0
        self.finished = False  # the poller stopped: run deleted or terminal
        self.subscribers = 0
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._rendered: dict[Hashable, bytes] = {}
        self._owner: asyncio.Future[str | None] | None = None

    def cached(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """``build()``, once for all the feed's streams (500 streams in step serialise an
        update once, not 500 times); the last ``RENDERED_KEEP`` kept."""
        text = self._rendered.get(key)
        if text is None:
            if len(self._rendered) >= RENDERED_KEEP:
                self._rendered.pop(next(iter(self._rendered)))
            text = self._rendered[key] = build()
        return text

    async def owner(self) -> str | None:
        """The run's owner (None: no such run), read once for all the feed's streams."""
        if self._owner is None:
            self._owner = asyncio.ensure_future(run_in_threadpool(self.feeds.owner_of, self.run_id))
        return await asyncio.shield(self._owner)

    def _publish(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _poll(self) -> None:
        try:
            while self.subscribers > 0:
                current = await run_in_threadpool(self.feeds.look, self.run_id, self.last_epoch)
                if current is not None and current.metrics:
                    self.window.extend(current.metrics)
                    self.last_epoch = current.metrics[-1][0]
                self.state = current
                if current is None or current.terminal:
                    self.finished = True
                self._publish()
                if self.finished:
                    return
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.finished = True
            self.feeds.forget(self)
            self._publish()

    async def follow(self, heartbeat: float | None = None) -> AsyncIterator[FeedUpdate | None]:
        """The run's updates from its first epoch on, until it is deleted or finished;
        None after ``heartbeat`` seconds without one (for a keep-alive)."""
        sent_epoch, seen = 0, 0
        self.subscribers += 1
        try:
            if self.task is None:
                self.task = asyncio.create_task(self._poll())
            while True:
                if self.version == seen:
                    try:
                        await asyncio.wait_for(self._changed.wait(), heartbeat)
                    except TimeoutError:
                        yield None
                        continue
                seen = self.version
                state = self.state
                if state is None:
                    if self.finished:
                        yield FeedUpdate([], None)
                        return
                    continue
                metrics = await self._since(sent_epoch)
                if metrics:
                    sent_epoch = metrics[-1][0]
                yield FeedUpdate(metrics, state)
                if state.terminal:
                    return
        finally:
            self.subscribers -= 1

    async def _since(self, epoch: int) -> list[tuple[int, dict[str, Any]]]:
        """The epochs after ``epoch`` the feed has seen: from the window, or (a stream
        that joined late or fell behind) once from the database."""
        if epoch >= self.last_epoch:
            return []
        if self.window and self.window[0][0] <= epoch + 1:
            return [entry for entry in self.window if entry[0] > epoch]
        current = await run_in_threadpool(self.feeds.look, self.run_id, epoch)
        if current is None:
            return []
        return [entry for entry in current.metrics if entry[0] <= self.last_epoch]


class RunFeeds:
    """The feeds of one app (``app.state``), one per run being watched."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._feeds: dict[str, RunFeed] = {}

    def look(self, run_id: str, after_epoch: int) -> RunSnapshot | None:
        """One read of the run (any owner: streams check the caller before they join)."""
        with self.factory() as session:
            return run_service.snapshot(
                session=session, run_id=run_id, scope=None, after_epoch=after_epoch
            )

    def owner_of(self, run_id: str) -> str | None:
        with self.factory() as session:
            row = run_store.get_run(session=session, run_id=run_id, owner_id=None)
            return row.owner_id if row is not None else None

    def feed(self, run_id: str) -> RunFeed:
        """The run's feed, started by its first stream."""
        feed = self._feeds.get(run_id)
        if feed is None or feed.finished:
            feed = self._feeds[run_id] = RunFeed(self, run_id)
        return feed

    def release(self, feed: RunFeed) -> None:
        """A feed no stream followed after all (the run is not there, or not the caller's)."""
        if feed.subscribers == 0 and feed.task is None:
            self.forget(feed)

    def forget(self, feed: RunFeed) -> None:
        if self._feeds.get(feed.run_id) is feed:
            del self._feeds[feed.run_id]

    def __len__(self) -> int:
        return len(self._feeds)

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task


def run_feeds(state: Any, factory: Callable[[], sessionmaker[Session]]) -> RunFeeds:
    """The app's ``RunFeeds`` (``state.run_feeds``), made on first use."""
    feeds: RunFeeds | None = getattr(state, "run_feeds", None)
    if feeds is None:
        feeds = state.run_feeds = RunFeeds(factory())
    return feeds
