-- A contact the MIS brings back can use the app again at once: every nginx
-- host forgets the tombstones it keeps for the contact's live tokens since
-- the retirement (sql/0006_xpressions.sql), instead of refusing them until
-- they expire.

CREATE FUNCTION msgr_contacts_restored_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('msgr_app_tokens_restored',
                      t.school_id || ':' || t.token_id)
       FROM msgr_app_tokens t
      WHERE t.school_id = NEW.school_id AND t.contact_id = NEW.contact_id
        AND t.revoked_at IS NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_contacts_restored
    AFTER UPDATE OF retired_at ON msgr_contacts
    FOR EACH ROW
    WHEN (NEW.retired_at IS NULL AND OLD.retired_at IS NOT NULL)
    EXECUTE FUNCTION msgr_contacts_restored_notify();
