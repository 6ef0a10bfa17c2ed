-- API keys: only a BLAKE2b-256 hash of each key's secret is stored.

CREATE TABLE msgr_api_keys (
    school_id   bigint NOT NULL REFERENCES msgr_schools (school_id),
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    role        text NOT NULL CHECK (role IN ('admin', 'staff', 'integrator')),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (school_id, key_id),
    UNIQUE (key_id)
);

-- Revocations are announced ("school_id:key_id") so that every nginx worker
-- forgets the key at once.
CREATE FUNCTION msgr_api_keys_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_keys', NEW.school_id || ':' || NEW.key_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_api_keys_revoked
    AFTER UPDATE OF revoked_at ON msgr_api_keys
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION msgr_api_keys_notify();
