-- Xpressions, the parents' app: per-contact app credentials (only a hash of
-- each token's secret is kept), the devices push notifications go to, the
-- topics parents choose from, and the messages parents send in.

CREATE TABLE msgr_app_tokens (
    school_id    bigint NOT NULL,
    token_id     text NOT NULL CHECK (token_id ~ '^[0-9a-f]{16}$'),
    contact_id   bigint NOT NULL,
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (school_id, token_id),
    UNIQUE (token_id),
    FOREIGN KEY (school_id, contact_id)
        REFERENCES msgr_contacts (school_id, contact_id)
);

CREATE INDEX msgr_app_tokens_contact
    ON msgr_app_tokens (school_id, contact_id);

CREATE FUNCTION msgr_app_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_app_tokens', NEW.school_id || ':' || NEW.token_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_app_tokens_revoked
    AFTER UPDATE OF revoked_at ON msgr_app_tokens
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION msgr_app_tokens_notify();

-- One device per app token (a signed-in app): the push token replaces the
-- earlier one; signing out removes it, and so does revoking the token.
CREATE TABLE msgr_app_devices (
    school_id    bigint NOT NULL,
    token_id     text NOT NULL,
    contact_id   bigint NOT NULL,
    platform     text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    push_token   text NOT NULL CHECK (length(push_token) BETWEEN 1 AND 4096),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_id, token_id),
    FOREIGN KEY (school_id, token_id)
        REFERENCES msgr_app_tokens (school_id, token_id)
);

CREATE INDEX msgr_app_devices_contact
    ON msgr_app_devices (school_id, contact_id);

CREATE OR REPLACE FUNCTION msgr_contact_devices(p_school bigint,
    p_contact bigint)
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer
      FROM msgr_app_devices d
      JOIN msgr_app_tokens t
        ON t.school_id = d.school_id AND t.token_id = d.token_id
     WHERE d.school_id = p_school AND d.contact_id = p_contact
       AND t.revoked_at IS NULL
$$;

CREATE TABLE msgr_xpressions_topics (
    school_id    bigint PRIMARY KEY REFERENCES msgr_schools (school_id),
    topics       jsonb NOT NULL DEFAULT '[]'
                 CHECK (jsonb_typeof(topics) = 'array'),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE msgr_incoming (
    school_id    bigint NOT NULL,
    message_id   bigint GENERATED ALWAYS AS IDENTITY,
    contact_id   bigint NOT NULL,
    student_id   bigint NOT NULL,
    token_id     text NOT NULL,
    topic        text NOT NULL,
    body         text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    read_by      text,
    PRIMARY KEY (school_id, message_id),
    FOREIGN KEY (school_id, contact_id)
        REFERENCES msgr_contacts (school_id, contact_id),
    FOREIGN KEY (school_id, student_id)
        REFERENCES msgr_students (school_id, student_id)
);

CREATE INDEX msgr_incoming_contact
    ON msgr_incoming (school_id, contact_id, message_id);

CREATE FUNCTION msgr_incoming_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_incoming',
                      NEW.school_id || ':' || NEW.message_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_incoming_created
    AFTER INSERT ON msgr_incoming
    FOR EACH ROW EXECUTE FUNCTION msgr_incoming_notify();

-- A contact the MIS no longer has cannot use the app: the tokens stay (the
-- contact may come back), but every nginx host forgets them at once, and
-- the next look-up finds the contact retired.
CREATE FUNCTION msgr_contacts_retired_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_app_tokens', t.school_id || ':' || t.token_id)
       FROM msgr_app_tokens t
      WHERE t.school_id = NEW.school_id AND t.contact_id = NEW.contact_id
        AND t.revoked_at IS NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_contacts_retired
    AFTER UPDATE OF retired_at ON msgr_contacts
    FOR EACH ROW
    WHEN (NEW.retired_at IS NOT NULL AND OLD.retired_at IS NULL)
    EXECUTE FUNCTION msgr_contacts_retired_notify();
