-- API keys for server clients. Only a SHA-256 digest of the secret is stored: the secret is
-- 256 random bits, so a slow password hash would add nothing but latency to every request.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'platform', 'merchant')),
    name          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
