-- The parents' app: at most 20 live app tokens per contact, and no device
-- left behind by a revoked token, whatever the order of concurrent requests.

-- Checked by the INSERT itself.  The contact's row is locked first, so two
-- creations for one contact take turns; the count that follows is a new
-- statement of a volatile function, and under READ COMMITTED it sees the
-- token the other creation committed while this one waited.
CREATE FUNCTION msgr_app_tokens_cap() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    live integer;
BEGIN
    PERFORM 1 FROM msgr_contacts
      WHERE school_id = NEW.school_id AND contact_id = NEW.contact_id
        FOR NO KEY UPDATE;

    SELECT count(*) INTO live FROM msgr_app_tokens
     WHERE school_id = NEW.school_id AND contact_id = NEW.contact_id
       AND revoked_at IS NULL;

    IF live >= 20 THEN
        RAISE EXCEPTION 'the contact has 20 live app tokens, the most '
                        'allowed; revoke one first'
              USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'msgr_app_tokens_per_contact';
    END IF;

    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_app_tokens_cap
    BEFORE INSERT ON msgr_app_tokens
    FOR EACH ROW WHEN (NEW.revoked_at IS NULL)
    EXECUTE FUNCTION msgr_app_tokens_cap();

-- Revoking a token removes its device.  The registration of a device locks
-- the token's row (FOR SHARE) and waits for a revocation under way, then
-- finds the token revoked; a revocation that waited for a registration
-- finds its device here, the trigger's statement seeing what committed
-- while the UPDATE waited.
CREATE FUNCTION msgr_app_tokens_revoked_devices() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM msgr_app_devices
     WHERE school_id = NEW.school_id AND token_id = NEW.token_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_app_tokens_revoked_devices
    AFTER UPDATE OF revoked_at ON msgr_app_tokens
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION msgr_app_tokens_revoked_devices();
