"""The notifier: one detached, named async actor that delivers the outbox's webhooks and mails.

It keeps nothing that matters in memory. Every delivery, its attempts and when it is due next
live in the catalog (``catalog.outbox``): the actor reads what is due, sends it, and records
the attempt with the time of the next one. Ray restarts it if its process dies
(``max_restarts=-1``), and the new one reads the same rows, so a delivery waiting for its retry
when the process was killed is sent when it comes due; one killed in flight is sent again
(at least once, with the same ``webhook-id``).

It wakes when the catalog commits a new delivery (``nudge``), when a delivery comes due, when
a request ends, and every ``VODRAY_NOTIFY_POLL_S`` in any case. Requests in flight are bounded
in total (``VODRAY_WEBHOOK_CONCURRENCY``) and per endpoint
(``VODRAY_WEBHOOK_CONCURRENCY_PER_ENDPOINT``; mails share ``MAIL_CONCURRENCY``), and the outbox is
read at most that many per endpoint at a time, so a slow or dead receiver holds its own slots
and never delays another endpoint's events.

Retries follow ``VODRAY_WEBHOOK_RETRY_SCHEDULE_S`` with +-20% jitter; a ``Retry-After`` is
honoured (up to a day). 2xx is delivered. ``410 Gone`` disables the endpoint. An endpoint one of
whose deliveries fails its whole schedule is disabled too, with the reason its owner reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import ray
from ray.util import metrics

from catalog.events import CONFIRM_EMAIL, NOTIFIER_ACTOR
from cluster import layout
from cluster.errors import NotFound, Unavailable
from cluster.settings import Settings
from pipelines.notify.addresses import AddressPolicy, GuardedBackend
from pipelines.notify.mail import confirmation_mail, send_mail, video_mail
from pipelines.notify.webhooks import Outcome, event_body, post_webhook, signed_headers, signing_secrets

log = logging.getLogger(__name__)

MAIL_CONCURRENCY = 4
BATCH = 256
"""Deliveries read from the outbox at once."""
MAX_RETRY_AFTER_S = 24 * 3600.0
"""A receiver's Retry-After is honoured up to this (a larger one would park a delivery for good)."""
JITTER = 0.2
KEEP_LOG_S = 30 * 24 * 3600.0
"""Finished deliveries (and their attempts) are kept this long for the delivery log."""
PURGE_EVERY_S = 3600.0
MAX_POSTER_BYTES = 2 * 1024 * 1024


def retry_delay_s(
    schedule: Sequence[float], attempts_done: int, retry_after_s: float | None, rng: random.Random
) -> float | None:
    """Seconds to wait before the next attempt after ``attempts_done`` failed ones; None when
    the schedule (whose length is the number of attempts) is used up."""
    if attempts_done >= len(schedule):
        return None
    wait = schedule[attempts_done] * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s is not None:
        wait = max(wait, min(retry_after_s, MAX_RETRY_AFTER_S))
    return wait


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Notifier:
    def __init__(self, settings: Settings) -> None:
        from catalog.actor import get_catalog
        from cluster.storage import Storage

        self._settings = settings
        self._notify = settings.notify
        self._catalog = get_catalog(settings)
        self._storage = Storage(settings.storage)
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=GuardedBackend(AddressPolicy.of(settings.notify)),
            max_connections=settings.notify.concurrency,
            max_keepalive_connections=0,  # every delivery resolves and checks its host again
            retries=0,
        )
        self._in_flight: dict[str, str] = {}  # delivery id -> its recipient key
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._purged = 0.0
        self._attempts = metrics.Counter(
            "vodray_notify_attempts",
            "Webhook and mail delivery attempts, by channel and result (delivered, retry, failed).",
            tag_keys=("channel", "result"),
        )
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def nudge(self) -> None:
        """Look at the outbox now (the catalog calls it after committing a new delivery)."""
        self._wake.set()

    async def stats(self) -> dict[str, Any]:
        """What it is doing now, for operators and tests (``pid`` is this process)."""
        by_recipient: dict[str, int] = {}
        for key in self._in_flight.values():
            by_recipient[key] = by_recipient.get(key, 0) + 1
        return {"pid": os.getpid(), "in_flight": len(self._in_flight), "by_recipient": by_recipient}

    async def _run(self) -> None:
        while True:
            try:
                wait_s = await self._pass()
            except Exception:  # noqa: BLE001 - the catalog away, a bug: never stop delivering
                log.warning("reading the outbox failed; trying again shortly", exc_info=True)
                wait_s = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            self._wake.clear()

    async def _pass(self) -> float:
        """Start what is due and may start; returns how long to sleep unless woken."""
        notify = self._notify
        if time.monotonic() - self._purged > PURGE_EVERY_S:
            self._purged = time.monotonic()
            await self._catalog.purge_deliveries.remote(KEEP_LOG_S)
        per_recipient = max(notify.concurrency_per_endpoint, MAIL_CONCURRENCY)
        found = await self._catalog.due_deliveries.remote(list(self._in_flight), per_recipient, BATCH)
        started = sum(self._start(delivery) for delivery in found["due"])
        wait_s = notify.poll_s
        next_due = found["next_due_at"]
        if next_due is not None:
            wait_s = min(wait_s, max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
        if found["due"] and not started:
            wait_s = notify.poll_s  # everything due waits for a slot: a finished request wakes us
        return max(wait_s, 0.01)

    def _start(self, delivery: dict[str, Any]) -> bool:
        key = delivery["endpoint_id"] or "mail"
        limit = MAIL_CONCURRENCY if key == "mail" else self._notify.concurrency_per_endpoint
        busy = sum(1 for k in self._in_flight.values() if k == key)
        full = len(self._in_flight) >= self._notify.concurrency
        if delivery["id"] in self._in_flight or busy >= limit or full:
            return False
        self._in_flight[delivery["id"]] = key
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        attempt = int(delivery["attempts"]) + 1
        try:
            try:
                if delivery["channel"] == "webhook":
                    outcome = await self._send_webhook(delivery)
                else:
                    outcome = await self._send_mail(delivery)
            except Exception:  # noqa: BLE001 - a bug in one delivery must not stop the others
                log.exception("delivery %s failed inside vodray", delivery["id"])
                outcome = Outcome(None, "an internal error stopped this attempt", 0)
            await self._record(delivery, attempt, outcome)
        except Exception:  # noqa: BLE001 - not recorded: it stays due and is sent again
            log.warning("delivery %s: attempt %d not recorded", delivery["id"], attempt, exc_info=True)
        finally:
            self._in_flight.pop(delivery["id"], None)
            self._wake.set()

    async def _record(self, delivery: dict[str, Any], attempt: int, outcome: Outcome) -> None:
        webhook = delivery["channel"] == "webhook"
        next_at: datetime | None = None
        disable: str | None = None
        if outcome.delivered:
            pass
        elif webhook and outcome.gone:
            disable = "the receiver answered 410 Gone"
        elif not outcome.permanent and not delivery["manual"]:
            schedule = self._notify.retry_schedule_s
            delay = retry_delay_s(schedule, attempt, outcome.retry_after_s, self._rng)
            if delay is not None:
                next_at = datetime.now(UTC) + timedelta(seconds=delay)
            elif webhook:
                disable = (
                    f"all {len(schedule)} attempts of delivery {delivery['id']} failed;"
                    f" the last: {outcome.error}"
                )
        result = "delivered" if outcome.delivered else ("retry" if next_at is not None else "failed")
        self._attempts.inc(tags={"channel": delivery["channel"], "result": result})
        await self._catalog.record_attempt.remote(
            delivery["id"],
            attempt,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            next_attempt_at=next_at,
            delivered=outcome.delivered,
            disable_reason=disable,
        )

    async def _send_webhook(self, delivery: dict[str, Any]) -> Outcome:
        body = event_body(delivery, self._notify.public_url)
        now = datetime.now(UTC)
        headers = signed_headers(delivery["event_id"], body, signing_secrets(delivery, now), now)
        return await post_webhook(self._pool, delivery["url"], headers, body, self._notify.timeout_s)

    async def _send_mail(self, delivery: dict[str, Any]) -> Outcome:
        notify, auth = self._notify, self._settings.auth
        if not notify.mail_enabled:
            return Outcome(None, "no mail server is set (VODRAY_SMTP_HOST)", 0, permanent=True)
        if delivery["type"] == CONFIRM_EMAIL:
            return await send_mail(confirmation_mail(delivery, notify, auth), notify, notify.timeout_s)
        recipient = await self._catalog.mail_recipient.remote(delivery["user_id"])
        if (
            recipient is None
            or recipient["email"] != delivery["address"]
            or not recipient["email_confirmed"]
            or delivery["type"] not in recipient["email_events"]
        ):
            unsent = "not sent: the user unsubscribed or changed their address"
            return Outcome(None, unsent, 0, permanent=True)
        poster = None
        if delivery["type"] != "video.failed":
            poster = await asyncio.to_thread(self._poster, str(delivery["video_id"]))
        message = video_mail(delivery, recipient, notify, auth, poster)
        return await send_mail(message, notify, notify.timeout_s)

    def _poster(self, video_id: str) -> bytes | None:
        key = layout.media_key(video_id, layout.POSTER_NAME)
        try:
            if self._storage.size(key) > MAX_POSTER_BYTES:
                return None
            return self._storage.read_bytes(key)
        except (NotFound, OSError):
            return None


def start_notifier(settings: Settings) -> Any:
    """Start (or find) the notifier; returns its handle once it answers."""
    handle = Notifier.options(  # type: ignore[attr-defined]
        name=NOTIFIER_ACTOR, namespace=settings.ray.namespace, lifetime="detached", get_if_exists=True
    ).remote(settings)
    try:
        ray.get(handle.stats.remote())
    except ray.exceptions.RayActorError as exc:
        raise Unavailable(f"the notifier could not start: {exc}") from exc
    return handle


def get_notifier(settings: Settings) -> Any:
    return ray.get_actor(NOTIFIER_ACTOR, namespace=settings.ray.namespace)
