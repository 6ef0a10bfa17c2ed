-- Account settings: one row per school holding only the values that differ
-- from the defaults (the defaults live in src/msgr_settings.c), a version
-- that every change bumps (it is the ETag), and an audit trail.

ALTER TABLE msgr_schools
    ADD COLUMN enhanced boolean NOT NULL DEFAULT false;

CREATE TABLE msgr_settings (
    school_id   bigint PRIMARY KEY REFERENCES msgr_schools (school_id),
    doc         jsonb NOT NULL DEFAULT '{}'
                CHECK (jsonb_typeof(doc) = 'object'),
    version     bigint NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO msgr_settings (school_id) SELECT school_id FROM msgr_schools;

CREATE FUNCTION msgr_schools_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO msgr_settings (school_id) VALUES (NEW.school_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_schools_settings
    AFTER INSERT ON msgr_schools
    FOR EACH ROW EXECUTE FUNCTION msgr_schools_settings();

-- Every change is announced ("school_id:version") so that the read caches
-- of every nginx host drop what they hold.
CREATE FUNCTION msgr_settings_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_settings', NEW.school_id || ':' || NEW.version);
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_settings_changed
    AFTER UPDATE ON msgr_settings
    FOR EACH ROW EXECUTE FUNCTION msgr_settings_notify();

CREATE TABLE msgr_settings_audit (
    school_id   bigint NOT NULL REFERENCES msgr_schools (school_id),
    audit_id    bigint GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,          -- an API key id, or 'operator'
    tab         text NOT NULL,
    field       text NOT NULL,
    old_value   jsonb,
    new_value   jsonb,
    PRIMARY KEY (school_id, audit_id)
);
