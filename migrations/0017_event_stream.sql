-- The event stream's outbox: one row per domain event, written by `webhooks::record_event` in
-- the transaction of the change the event reports (beside the event and its webhook
-- deliveries), and published to NATS JetStream by the `events` publisher. A row exists if and
-- only if its event committed, whether or not the merchant has webhook endpoints.
--
-- The publisher claims due pending rows under a lease (as the webhook and job workers do), not
-- by a cursor over ids: an id (or a time) read as "everything before this is done" would skip
-- a row whose transaction began earlier and committed later.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.

CREATE TABLE event_publications (
    -- The event's id ('evt_…', the id of its webhook_events row); sent as the message's
    -- Nats-Msg-Id, so JetStream drops a republish of the same event within its duplicate window.
    event_id        TEXT PRIMARY KEY,
    -- 'payment_order.succeeded', …: the message's subject is the configured prefix, a dot, and
    -- this.
    event_type      TEXT NOT NULL,
    -- The exact message body, fixed when the event is recorded: the webhook body plus the
    -- merchant id, so that every attempt publishes the same bytes.
    body            TEXT NOT NULL,
    -- pending: due at next_attempt_at (or being published under a lease); published: JetStream
    -- acknowledged it.
    state           TEXT NOT NULL CHECK (state IN ('pending', 'published')),
    -- Attempts started; failed ones wait longer each time (capped), never give up.
    attempts        BIGINT NOT NULL CHECK (attempts >= 0),
    -- When a pending row is next due. A claimed one is due again when its lease ends, so an
    -- attempt lost with its publisher is made again (and deduplicated by JetStream).
    next_attempt_at BIGINT NOT NULL,
    -- The claim of the publisher sending it; an outcome is recorded only under the same claim.
    lease_token     TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    published_at    BIGINT,
    -- The stream and its sequence number that stored the message, from JetStream's ack.
    stream_name     TEXT,
    stream_sequence BIGINT,
    CHECK ((state = 'published') = (published_at IS NOT NULL))
);
-- Claims walk pending rows oldest first; pruning walks either state by age.
CREATE INDEX event_publications_by_state ON event_publications (state, created_at, event_id);
