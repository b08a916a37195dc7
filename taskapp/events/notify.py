"""Wake-ups: after a commit that wrote activity-log entries (a change to tasks), tell
every stream hub to read the log now rather than at its next poll.

In this process the hub (if it runs here: the development server, a test) is woken
directly; other processes and hosts hear it over Redis pub/sub (``REDIS_URL``), sent by
one daemon thread per process so that a slow or absent Redis never holds a request. A
wake-up is only a hint: the hubs poll the log anyway (``EVENTS_POLL_SECONDS``), and the
log, not the message, says what happened. Writes made by set-based SQL (the sweeps) are
found by that poll.
"""

import logging
import threading

import redis

logger = logging.getLogger(__name__)
CHANNEL = "taskapp:events:wake"
IDLE_SECONDS = 60


class Waker:
    """One per app: the local hub (set when it starts) and the Redis publisher."""

    def __init__(self, redis_url: str | None):
        self.redis_url = redis_url
        self.hub = None
        self.wanted = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def poke(self) -> None:
        if self.hub is not None:
            self.hub.wake()
        if self.redis_url is None:
            return
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(
                        target=self._publish, name="events-waker", daemon=True
                    )
                    self.thread.start()
        self.wanted.set()

    def _publish(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        while self.wanted.wait(timeout=IDLE_SECONDS):  # idle: end; poke restarts it
            self.wanted.clear()
            try:
                client.publish(CHANNEL, b"1")
            except redis.RedisError as error:  # the hubs' polls will find the change
                logger.warning("events wake-up not sent (%s)", error)


def listen_for_wakeups(redis_url: str, wake) -> threading.Thread:
    """A daemon thread that calls ``wake()`` for every wake-up message on Redis,
    reconnecting for ever (the hub polls meanwhile)."""

    def run():
        import time

        while True:
            try:
                client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                for _message in pubsub.listen():
                    wake()
            except redis.RedisError as error:
                logger.warning("events: Redis wake-ups lost (%s); polling meanwhile", error)
                time.sleep(2)

    thread = threading.Thread(target=run, name="events-wakeups", daemon=True)
    thread.start()
    return thread
