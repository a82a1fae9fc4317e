"""Telling people and programs what happened to their videos: signed webhooks and emails.

The catalog records every event in its outbox in the same transaction as the change it reports
(``catalog.outbox``); the notifier actor (``pipelines.notify.notifier``) delivers from there,
with retries whose state is kept in the catalog. ``addresses`` decides where a webhook may go,
``webhooks`` signs and sends one, ``mail`` writes and sends one, ``links`` makes and checks the
signed links a mail carries.
"""
