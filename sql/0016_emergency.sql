-- Emergency & Voice: pincodes with which staff broadcast to groups by
-- phone or text without signing in, their audit, the dial-in attempts and
-- the numbers locked out.  docs/emergency.md describes them.

-- A pincode: only the Argon2id hash of its code (crypto_pwhash_str) is
-- kept.  permitted_numbers are E.164; options are
-- [{"digit", "label", "channels", "groups"}], digits 1 to 9.
CREATE TABLE msgr_pincodes (
    school_id          bigint NOT NULL REFERENCES msgr_schools (school_id),
    pincode_id         bigint GENERATED ALWAYS AS IDENTITY,
    label              text NOT NULL,
    code_hash          text NOT NULL CHECK (code_hash LIKE '$argon2id$%'),
    permitted_numbers  text[] NOT NULL DEFAULT '{}',
    menu_script        text NOT NULL,
    options            jsonb NOT NULL DEFAULT '[]'
                       CHECK (jsonb_typeof(options) = 'array'),
    version            bigint NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz,
    PRIMARY KEY (school_id, pincode_id),
    UNIQUE (pincode_id)
);

-- who may dial in: the pincodes that permit a number
CREATE INDEX msgr_pincodes_numbers
    ON msgr_pincodes USING gin (permitted_numbers);

-- What changed, as the settings' audit: one row per field changed.
CREATE TABLE msgr_pincode_audit (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    audit_id     bigint GENERATED ALWAYS AS IDENTITY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    pincode_id   bigint NOT NULL,
    field        text NOT NULL
                 CHECK (field IN ('created', 'label', 'permitted_numbers',
                                  'menu_script', 'options', 'code',
                                  'deleted')),
    old_value    jsonb,
    new_value    jsonb,
    PRIMARY KEY (school_id, audit_id)
);

-- Every dial-in attempt: the caller's number, its outcome, the schools
-- whose pincodes permit the number (what their administrators see).
CREATE TABLE msgr_dial_in_attempts (
    attempt_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    number       text NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('voice', 'sms')),
    outcome      text NOT NULL
                 CHECK (outcome IN ('accepted', 'wrong', 'locked')),
    school_ids   bigint[] NOT NULL DEFAULT '{}',
    pincode_id   bigint
);

CREATE INDEX msgr_dial_in_attempts_number
    ON msgr_dial_in_attempts (number, at);

CREATE INDEX msgr_dial_in_attempts_schools
    ON msgr_dial_in_attempts USING gin (school_ids);

-- A number locked out; the row stays after the lock ends, so failures from
-- before it do not count again.
CREATE TABLE msgr_dial_in_locks (
    number        text PRIMARY KEY,
    locked_until  timestamptz NOT NULL
);

CREATE FUNCTION msgr_pincode_json(p msgr_pincodes) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p.pincode_id,
        'label', p.label,
        'permitted_numbers', to_jsonb(p.permitted_numbers),
        'menu_script', p.menu_script,
        'options', p.options,
        'created_at', to_char(p.created_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(p.updated_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'last_used_at', to_char(p.last_used_at AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;


-- The options' groups that are not the school's current groups, as
-- [{"field": "options[i].groups", "message"}].
CREATE FUNCTION msgr_pincode_group_errors(p_school bigint, p_options jsonb)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'field', 'options[' || (o.i - 1) || '].groups',
               'message', 'no group ' || g.id) ORDER BY o.i, g.id), '[]')
      FROM jsonb_array_elements(coalesce(p_options, '[]'))
           WITH ORDINALITY AS o(opt, i),
           LATERAL (SELECT x::bigint AS id
                      FROM jsonb_array_elements_text(o.opt -> 'groups') x)
           AS g
     WHERE NOT EXISTS (SELECT 1 FROM msgr_groups mg
                        WHERE mg.school_id = p_school
                          AND mg.group_id = g.id
                          AND mg.retired_at IS NULL)
$$;


-- Creates (p_id NULL) or changes a pincode, with its audit.  p_doc holds
-- the fields to set (all of them on creation), checked by the module but
-- for the groups; p_hash a new code's hash or NULL; p_if_match the ETag
-- of If-Match or NULL.  Returns {"status", "pincode", "etag"} or
-- {"status": 404 | 412 | 422, "errors"}.
CREATE FUNCTION msgr_pincode_save(p_school bigint, p_actor text,
                                  p_id bigint, p_hash text, p_doc jsonb,
                                  p_if_match text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    old     msgr_pincodes;
    new     msgr_pincodes;
    errors  jsonb;
    f       text;
BEGIN
    errors := msgr_pincode_group_errors(p_school, p_doc -> 'options');

    IF p_id IS NOT NULL THEN
        SELECT * INTO old FROM msgr_pincodes
         WHERE school_id = p_school AND pincode_id = p_id
           FOR UPDATE;

        IF NOT FOUND THEN
            RETURN jsonb_build_object('status', 404);
        END IF;

        IF p_if_match IS NOT NULL AND p_if_match <> '*'
           AND p_if_match <> '"' || old.version || '"'
        THEN
            RETURN jsonb_build_object('status', 412);
        END IF;
    END IF;

    IF jsonb_array_length(errors) > 0 THEN
        RETURN jsonb_build_object('status', 422, 'errors', errors);
    END IF;

    IF p_id IS NULL THEN
        INSERT INTO msgr_pincodes (school_id, label, code_hash,
                                   permitted_numbers, menu_script, options)
        VALUES (p_school, p_doc ->> 'label', p_hash,
                ARRAY(SELECT jsonb_array_elements_text(
                          p_doc -> 'permitted_numbers')),
                p_doc ->> 'menu_script', p_doc -> 'options')
        RETURNING * INTO new;

        INSERT INTO msgr_pincode_audit (school_id, actor, pincode_id, field,
                                        new_value)
        VALUES (p_school, p_actor, new.pincode_id, 'created',
                msgr_pincode_json(new));

        RETURN jsonb_build_object('status', 201,
                                  'pincode', msgr_pincode_json(new),
                                  'etag', '"' || new.version || '"');
    END IF;

    UPDATE msgr_pincodes p
       SET label = coalesce(p_doc ->> 'label', p.label),
           permitted_numbers = CASE WHEN p_doc ? 'permitted_numbers'
               THEN ARRAY(SELECT jsonb_array_elements_text(
                              p_doc -> 'permitted_numbers'))
               ELSE p.permitted_numbers END,
           menu_script = coalesce(p_doc ->> 'menu_script', p.menu_script),
           options = coalesce(p_doc -> 'options', p.options),
           code_hash = coalesce(p_hash, p.code_hash),
           version = p.version + 1,
           updated_at = now()
     WHERE p.school_id = p_school AND p.pincode_id = p_id
    RETURNING * INTO new;

    FOREACH f IN ARRAY ARRAY['label', 'permitted_numbers', 'menu_script',
                             'options']
    LOOP
        IF msgr_pincode_json(old) -> f IS DISTINCT FROM
           msgr_pincode_json(new) -> f
        THEN
            INSERT INTO msgr_pincode_audit (school_id, actor, pincode_id,
                                            field, old_value, new_value)
            VALUES (p_school, p_actor, p_id, f, msgr_pincode_json(old) -> f,
                    msgr_pincode_json(new) -> f);
        END IF;
    END LOOP;

    IF p_hash IS NOT NULL THEN
        INSERT INTO msgr_pincode_audit (school_id, actor, pincode_id, field)
        VALUES (p_school, p_actor, p_id, 'code');
    END IF;

    RETURN jsonb_build_object('status', 200,
                              'pincode', msgr_pincode_json(new),
                              'etag', '"' || new.version || '"');
END
$$;


-- Deletes a pincode, audited.  Returns 204, 404 or 412 (If-Match).
CREATE FUNCTION msgr_pincode_delete(p_school bigint, p_actor text,
                                    p_id bigint, p_if_match text)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    old  msgr_pincodes;
BEGIN
    SELECT * INTO old FROM msgr_pincodes
     WHERE school_id = p_school AND pincode_id = p_id
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN 404;
    END IF;

    IF p_if_match IS NOT NULL AND p_if_match <> '*'
       AND p_if_match <> '"' || old.version || '"'
    THEN
        RETURN 412;
    END IF;

    DELETE FROM msgr_pincodes
     WHERE school_id = p_school AND pincode_id = p_id;

    INSERT INTO msgr_pincode_audit (school_id, actor, pincode_id, field,
                                    old_value)
    VALUES (p_school, p_actor, p_id, 'deleted', msgr_pincode_json(old));

    RETURN 204;
END
$$;


-- Who may be calling from p_number: {"locked": the lock's end or null,
-- "candidates": [{"school", "id", "hash"}]}, the pincodes that permit it.
CREATE FUNCTION msgr_dial_in_lookup(p_number text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'locked', (SELECT to_char(l.locked_until AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                     FROM msgr_dial_in_locks l
                    WHERE l.number = p_number AND l.locked_until > now()),
        'candidates', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'school', p.school_id, 'id', p.pincode_id,
                           'hash', p.code_hash) ORDER BY p.pincode_id), '[]')
                         FROM msgr_pincodes p
                        WHERE p.permitted_numbers @> ARRAY[p_number]))
$$;


-- Records an attempt from p_number.  A wrong one is the third within 10
-- minutes (since the number's last lock ended): the number is locked out
-- for 30 minutes.  An accepted one marks the pincode used.  Returns
-- {"locked_until"} or {}.
CREATE FUNCTION msgr_dial_in_attempt(p_number text, p_channel text,
                                     p_outcome text, p_pincode bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    schools  bigint[];
    since    timestamptz;
    n        integer;
    until    timestamptz;
BEGIN
    -- one number's attempts one at a time, so the third is counted once
    PERFORM pg_advisory_xact_lock(hashtextextended(
                'msgr_dial_in:' || p_number, 0));

    SELECT coalesce(array_agg(DISTINCT p.school_id), '{}') INTO schools
      FROM msgr_pincodes p
     WHERE p.permitted_numbers @> ARRAY[p_number];

    INSERT INTO msgr_dial_in_attempts (number, channel, outcome,
                                       school_ids, pincode_id)
    VALUES (p_number, p_channel, p_outcome, schools, p_pincode);

    IF p_outcome = 'accepted' THEN
        UPDATE msgr_pincodes SET last_used_at = now()
         WHERE pincode_id = p_pincode;
        RETURN '{}';
    END IF;

    IF p_outcome <> 'wrong' THEN
        RETURN '{}';
    END IF;

    SELECT greatest(now() - interval '10 minutes',
                    coalesce(max(l.locked_until), '-infinity'))
      INTO since
      FROM msgr_dial_in_locks l WHERE l.number = p_number;

    SELECT count(*) INTO n FROM msgr_dial_in_attempts a
     WHERE a.number = p_number AND a.outcome = 'wrong' AND a.at > since;

    IF n >= 3 THEN
        until := now() + interval '30 minutes';

        INSERT INTO msgr_dial_in_locks (number, locked_until)
        VALUES (p_number, until)
        ON CONFLICT (number)
        DO UPDATE SET locked_until = excluded.locked_until;

        RETURN jsonb_build_object('locked_until', until);
    END IF;

    RETURN '{}';
END
$$;


-- A pincode as a call in progress sees it: when p_number is still
-- permitted and not locked out, {"school", "id", "menu_script",
-- "options"}; otherwise nothing.
CREATE FUNCTION msgr_dial_in_pincode(p_pincode bigint, p_number text)
RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('school', p.school_id, 'id', p.pincode_id,
                              'menu_script', p.menu_script,
                              'options', p.options)
      FROM msgr_pincodes p
     WHERE p.pincode_id = p_pincode
       AND p.permitted_numbers @> ARRAY[p_number]
       AND NOT EXISTS (SELECT 1 FROM msgr_dial_in_locks l
                        WHERE l.number = p_number
                          AND l.locked_until > now())
$$;


-- A broadcast by a pincode: the message and its outbox rows as
-- msgr_message_send() writes them, sent by 'pincode:<id>' (role
-- 'pincode', no sending PIN), its deliveries at the emergency priority
-- -10 (the sender takes lower priorities first; normal messages are 0).
-- p_recording: the voice body is the URL of a recording.  Returns the
-- message.
CREATE FUNCTION msgr_pincode_broadcast(p_school bigint, p_pincode bigint,
                                       p_recording boolean,
                                       p_message jsonb, p_deliveries jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    sender  text := 'pincode:' || p_pincode;
    answer  jsonb;
    id      bigint;
BEGIN
    answer := msgr_message_send(p_school, sender, 'pincode', NULL, NULL,
                                p_message, p_deliveries) -> 'message';
    id := (answer ->> 'id')::bigint;

    UPDATE msgr_deliveries SET priority = -10
     WHERE school_id = p_school AND message_id = id;

    UPDATE msgr_messages SET voice_recording = p_recording
     WHERE school_id = p_school AND message_id = id;

    -- a pincode has no "last send_to" of its own
    DELETE FROM msgr_send_defaults
     WHERE school_id = p_school AND key_id = sender;

    RETURN answer || jsonb_build_object('voice_recording', p_recording);
END
$$;
