-- Writing a school's settings, the one statement for the API (PATCH
-- /v1/settings) and the operator (msgrctl school set): the new overrides
-- and a new version, the school's name (school.name) and, for the
-- operator, Enhanced Messenger, and one audit row per changed field.
--
-- p_version is the version the writer read: when another writer has come
-- first there is nothing written and no row back.  p_enhanced NULL leaves
-- Enhanced Messenger as it is.  p_actor is an API key id, or 'operator'.
-- p_changes is [{"tab","field","old","new"}], as msgr_settings_patch()
-- gives them.  Returns the new version.

CREATE FUNCTION msgr_settings_write(p_school bigint, p_version bigint,
                                    p_doc jsonb, p_name text,
                                    p_enhanced boolean, p_actor text,
                                    p_changes jsonb)
RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    v  bigint;
BEGIN
    UPDATE msgr_settings SET doc = p_doc, version = version + 1,
           updated_at = now()
     WHERE school_id = p_school AND version = p_version
    RETURNING version INTO v;

    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE msgr_schools
       SET name = p_name, enhanced = coalesce(p_enhanced, enhanced)
     WHERE school_id = p_school
       AND (name <> p_name OR enhanced <> coalesce(p_enhanced, enhanced));

    INSERT INTO msgr_settings_audit
           (school_id, actor, tab, field, old_value, new_value)
    SELECT p_school, p_actor, c->>'tab', c->>'field', c->'old', c->'new'
      FROM jsonb_array_elements(p_changes) AS c;

    RETURN NEXT v;
END
$$;
