-- Webhooks: the endpoints merchants register, the events mypay records in the same database
-- transaction as the change they report (a transactional outbox), and one delivery per event
-- and subscribed endpoint, sent by a worker with retries.
--
-- Portable across SQLite and PostgreSQL: TEXT ids, BIGINT microseconds since the Unix epoch.
-- Endpoint secrets are stored only sealed (AES-256-GCM under the account-number keyring).

CREATE TABLE webhook_endpoints (
    -- 'we_' followed by a ULID.
    id            TEXT PRIMARY KEY,
    -- The merchant ('mer_…') whose events the endpoint receives.
    merchant_id   TEXT NOT NULL,
    -- An http or https URL, checked when registered.
    url           TEXT NOT NULL,
    -- A JSON array of event type names the endpoint is subscribed to; '[]' means every type.
    event_types   TEXT NOT NULL,
    -- The id of the keyring key that sealed secret_sealed.
    secret_key_id TEXT NOT NULL,
    -- base64 of nonce || ciphertext || tag of the signing secret ('whsec_…'); the endpoint id
    -- is the associated data, so a sealed secret copied to another row does not open.
    secret_sealed TEXT NOT NULL,
    -- active: events are delivered; deleted: ended by the merchant or an operator.
    status        TEXT NOT NULL CHECK (status IN ('active', 'deleted')),
    created_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id, status, id);

-- How many live endpoints each merchant has. Taken with one conditional UPDATE
-- (`live < max`) when an endpoint is registered, so the limit holds across concurrent
-- requests and replicas; given back when one is deleted.
CREATE TABLE webhook_endpoint_counts (
    merchant_id TEXT PRIMARY KEY,
    live        BIGINT NOT NULL CHECK (live >= 0)
);

-- One row per event, written in the transaction of the change it reports: it exists if and
-- only if the change committed.
CREATE TABLE webhook_events (
    -- 'evt_' followed by a ULID; receivers deduplicate on it.
    id               TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL,
    -- 'payment.succeeded', 'refund.succeeded', 'escrow.confirmed', …
    event_type       TEXT NOT NULL,
    -- The resource the event is about, and its version after the change: receivers order the
    -- events of one resource by it.
    resource_type    TEXT NOT NULL,
    resource_id      TEXT NOT NULL,
    resource_version BIGINT NOT NULL CHECK (resource_version >= 0),
    -- The exact JSON body every delivery of the event sends, fixed when it is recorded.
    payload          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    -- One event per change and merchant: recording the same type for the same resource version
    -- again is a replay of the first, never a second event. The merchant is part of the key
    -- because one change can concern several merchants (a payment with several sellers).
    UNIQUE (merchant_id, resource_type, resource_id, resource_version, event_type)
);
CREATE INDEX webhook_events_by_merchant ON webhook_events (merchant_id, id);

-- One row per event and endpoint subscribed to it when the event was recorded.
CREATE TABLE webhook_deliveries (
    -- 'whd_' followed by a ULID.
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES webhook_events (id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    -- The event's merchant, so that who may act on a delivery is known from its row.
    merchant_id     TEXT NOT NULL,
    -- pending: due at next_attempt_at (or being sent under a lease); delivered: a 2xx answer;
    -- dead: the attempts ran out, waiting for an operator's retry; cancelled: the endpoint was
    -- deleted before the delivery succeeded.
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'cancelled')),
    -- Attempts started in the current schedule (an operator's retry starts a new one).
    attempts        BIGINT NOT NULL CHECK (attempts >= 0),
    -- When a pending delivery is next due. A claimed one is due again when its lease ends, so
    -- an attempt lost with its worker is made again.
    next_attempt_at BIGINT NOT NULL,
    -- The claim of the worker sending it; an outcome is recorded only under the same claim.
    lease_token     TEXT,
    -- The HTTP status of the last attempt, if it got an answer, and why it failed.
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, state);
