-- Sending messages: the message, its outbox (one delivery per recipient x
-- channel x address x purpose, drained by msgr-sender), the school's price
-- list and sending PIN, the PIN's lockout, Idempotency-Key answers and each
-- key's last send_to.  docs/routing.md and docs/api.md describe them.

-- A contact's own fields (local edits over the MIS values, as
-- msgr_contact_json() shows them), without its students or the history of
-- its edits: what resolving a send needs, for thousands at once.
CREATE FUNCTION msgr_contact_fields(c msgr_contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
               'id', c.contact_id,
               'mis_id', c.mis_id,
               'title', coalesce(c.overrides ->> 'title', c.title),
               'first_name', coalesce(c.overrides ->> 'first_name',
                                      c.first_name),
               'last_name', coalesce(c.overrides ->> 'last_name',
                                     c.last_name),
               'home_phone', CASE WHEN c.overrides ? 'home_phone'
                                  THEN nullif(c.overrides ->> 'home_phone',
                                              '')
                                  ELSE c.home_phone END,
               'work_phone', CASE WHEN c.overrides ? 'work_phone'
                                  THEN nullif(c.overrides ->> 'work_phone',
                                              '')
                                  ELSE c.work_phone END,
               'mobile_phone', CASE WHEN c.overrides ? 'mobile_phone'
                                    THEN nullif(c.overrides
                                                ->> 'mobile_phone', '')
                                    ELSE c.mobile_phone END,
               'email', CASE WHEN c.overrides ? 'email'
                             THEN nullif(c.overrides ->> 'email', '')
                             ELSE c.email END,
               'language', coalesce(c.overrides ->> 'language', c.language),
               'phone_problems', c.phone_problems)
$$;

-- The students of some contacts, as a contact's JSON lists them: one
-- grouped query for any number of contacts.
CREATE FUNCTION msgr_contact_students(p_school bigint, p_contacts bigint[])
RETURNS TABLE (contact_id bigint, students jsonb)
LANGUAGE sql STABLE AS $$
    SELECT l.contact_id,
           jsonb_agg(jsonb_build_object(
               'id', s.student_id,
               'first_name', s.first_name,
               'last_name', s.last_name,
               'reg_group', s.reg_group,
               'relationship', nullif(l.relationship, ''),
               'priority', l.priority,
               'correspondence', l.correspondence)
               ORDER BY l.priority, s.student_id)
      FROM msgr_student_contacts l
      JOIN msgr_students s
        ON s.school_id = l.school_id AND s.student_id = l.student_id
     WHERE l.school_id = p_school AND l.contact_id = ANY (p_contacts)
       AND l.retired_at IS NULL AND s.retired_at IS NULL
     GROUP BY l.contact_id
$$;

-- The same JSON as sql/0007_contact_json.sql's, made of the two above.
CREATE OR REPLACE FUNCTION msgr_contact_json(c msgr_contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT msgr_contact_fields(c)
           || jsonb_build_object(
               'overridden', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]')
                                FROM jsonb_object_keys(c.overrides) AS k),
               'mis_values', (SELECT coalesce(jsonb_object_agg(k, m -> k),
                                              '{}')
                                FROM jsonb_object_keys(c.overrides) AS k,
                                     jsonb_build_object(
                                         'title', c.title,
                                         'first_name', c.first_name,
                                         'last_name', c.last_name,
                                         'home_phone', c.home_phone,
                                         'work_phone', c.work_phone,
                                         'mobile_phone', c.mobile_phone,
                                         'email', c.email,
                                         'language', c.language) AS m
                               WHERE m ? k),
               'students', coalesce((SELECT x.students
                                       FROM msgr_contact_students(
                                                c.school_id,
                                                ARRAY[c.contact_id]) x),
                                    '[]'))
$$;


-- The records a send reads (groups, students, their contacts, staff), as
-- one document for msgr_recipients_resolve() (docs/recipients.md): the one
-- query GET /v1/recipients and POST /v1/messages share.  Every part is one
-- grouped pass, so a whole school costs a few scans, not one per student.
CREATE FUNCTION msgr_send_records(p_school bigint, p_groups bigint[],
                                  p_students bigint[])
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH sg AS (
        SELECT g.group_id, g.name, g.type FROM msgr_groups g
         WHERE g.school_id = p_school AND g.group_id = ANY (p_groups)
           AND g.retired_at IS NULL),
    gs AS (
        SELECT m.group_id, m.student_id FROM msgr_group_students m
          JOIN sg USING (group_id)
          JOIN msgr_students s
            ON s.school_id = m.school_id AND s.student_id = m.student_id
         WHERE m.school_id = p_school AND m.retired_at IS NULL
           AND s.retired_at IS NULL),
    gt AS (
        SELECT m.group_id, m.staff_id, m.teacher FROM msgr_group_staff m
          JOIN sg USING (group_id)
          JOIN msgr_staff t
            ON t.school_id = m.school_id AND t.staff_id = m.staff_id
         WHERE m.school_id = p_school AND m.retired_at IS NULL
           AND t.retired_at IS NULL),
    ss AS (
        SELECT s.student_id FROM msgr_students s
         WHERE s.school_id = p_school AND s.student_id = ANY (p_students)
           AND s.retired_at IS NULL),
    st AS (
        SELECT s.* FROM msgr_students s
         WHERE s.school_id = p_school AND s.retired_at IS NULL
           AND s.student_id IN (SELECT student_id FROM gs
                                UNION SELECT student_id FROM ss)),
    li AS (
        SELECT l.* FROM msgr_student_contacts l
         WHERE l.school_id = p_school AND l.retired_at IS NULL
           AND l.student_id IN (SELECT student_id FROM st)),
    co AS (
        SELECT c.contact_id, msgr_contact_fields(c) AS j
          FROM msgr_contacts c
         WHERE c.school_id = p_school AND c.retired_at IS NULL
           AND c.contact_id IN (SELECT contact_id FROM li)),
    dv AS (
        SELECT v.contact_id, count(*)::integer AS n
          FROM msgr_app_devices v
          JOIN msgr_app_tokens t
            ON t.school_id = v.school_id AND t.token_id = v.token_id
         WHERE v.school_id = p_school AND t.revoked_at IS NULL
         GROUP BY v.contact_id),
    lj AS (
        SELECT li.student_id,
               jsonb_agg(jsonb_build_object(
                   'id', li.contact_id, 'priority', li.priority,
                   'correspondence', li.correspondence,
                   'relationship', li.relationship)
                   ORDER BY li.priority, li.contact_id) AS contacts
          FROM li
          JOIN msgr_contacts c
            ON c.school_id = li.school_id AND c.contact_id = li.contact_id
         WHERE c.retired_at IS NULL
         GROUP BY li.student_id)
    SELECT jsonb_build_object(
        'selected_groups', (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'id', g.group_id, 'name', g.name, 'type', g.type,
            'students', (SELECT coalesce(jsonb_agg(gs.student_id
                         ORDER BY gs.student_id), '[]') FROM gs
                         WHERE gs.group_id = g.group_id),
            'staff', (SELECT coalesce(jsonb_agg(gt.staff_id
                      ORDER BY gt.staff_id), '[]') FROM gt
                      WHERE gt.group_id = g.group_id AND NOT gt.teacher),
            'teachers', (SELECT coalesce(jsonb_agg(gt.staff_id
                         ORDER BY gt.staff_id), '[]') FROM gt
                         WHERE gt.group_id = g.group_id AND gt.teacher))
            ORDER BY array_position(p_groups, g.group_id)), '[]')
            FROM sg g),
        'selected_students', (SELECT coalesce(jsonb_agg(student_id
            ORDER BY array_position(p_students, student_id)), '[]')
            FROM ss),
        'students', (SELECT coalesce(jsonb_object_agg(s.student_id,
            msgr_student_json(s) || jsonb_build_object('contacts',
                coalesce(lj.contacts, '[]'))), '{}')
            FROM st s LEFT JOIN lj USING (student_id)),
        'contacts', (SELECT coalesce(jsonb_object_agg(co.contact_id,
            co.j || jsonb_build_object('devices', coalesce(dv.n, 0))), '{}')
            FROM co LEFT JOIN dv USING (contact_id)),
        'staff', (SELECT coalesce(jsonb_object_agg(t.staff_id,
            msgr_staff_json(t)), '{}') FROM msgr_staff t
            WHERE t.school_id = p_school AND t.retired_at IS NULL
              AND t.staff_id IN (SELECT staff_id FROM gt)),
        'missing_groups', (SELECT coalesce(jsonb_agg(x), '[]')
            FROM unnest(p_groups) AS x
            WHERE x NOT IN (SELECT group_id FROM sg)),
        'missing_students', (SELECT coalesce(jsonb_agg(x), '[]')
            FROM unnest(p_students) AS x
            WHERE x NOT IN (SELECT student_id FROM ss)))
$$;


-- The operator's price list for a school (msgrctl school prices), in the
-- school's billing unit; keys not set take the defaults of
-- src/msgr_routing.c.
ALTER TABLE msgr_schools
    ADD COLUMN prices jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(prices) = 'object');


CREATE TABLE msgr_messages (
    school_id        bigint NOT NULL REFERENCES msgr_schools (school_id),
    message_id       bigint GENERATED ALWAYS AS IDENTITY,
    sender           text NOT NULL,          -- the API key's id
    sender_role      text NOT NULL,
    channels         text[] NOT NULL,
    send_to          text NOT NULL,
    groups           bigint[] NOT NULL DEFAULT '{}',
    students         bigint[] NOT NULL DEFAULT '{}',
    subject          text,
    body             text NOT NULL,
    sms_body         text,
    voice_body       text,
    translations     jsonb NOT NULL DEFAULT '{}',
    routing          text NOT NULL
                     CHECK (routing IN ('default', 'least_cost', 'fastest',
                                        'custom')),
    routing_override boolean NOT NULL DEFAULT false,
    status           text NOT NULL
                     CHECK (status IN ('scheduled', 'queued', 'cancelled')),
    send_at          timestamptz NOT NULL DEFAULT now(),
    counts           jsonb NOT NULL,
    cost             jsonb NOT NULL,
    pin_used         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    cancelled_at     timestamptz,
    PRIMARY KEY (school_id, message_id),
    UNIQUE (message_id)
);

CREATE INDEX msgr_messages_recent
    ON msgr_messages (school_id, message_id DESC);


-- The outbox.  State names are plain: scheduled (waiting for run_at),
-- queued, sending (claimed, locked_by until locked_until), sent, delivered,
-- read (the app only), and the terminal cancelled, temporary-failure,
-- permanent-failure, technical-failure.  read is terminal too; a delivery
-- never leaves a terminal state.
CREATE TABLE msgr_deliveries (
    school_id        bigint NOT NULL,
    delivery_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id       bigint NOT NULL,
    recipient_type   text NOT NULL CHECK (recipient_type IN ('contact',
                                                             'staff')),
    recipient_id     bigint NOT NULL,
    channel          text NOT NULL
                     CHECK (channel IN ('xpressions', 'sms', 'voice',
                                        'email')),
    address          text NOT NULL DEFAULT '',   -- '' for xpressions
    purpose          text NOT NULL CHECK (purpose IN ('primary', 'backup')),
    language         text,                       -- a translation's, or NULL
    subject          text,
    body             text NOT NULL,
    cost             bigint NOT NULL DEFAULT 0,
    state            text NOT NULL
                     CHECK (state IN ('scheduled', 'queued', 'sending',
                                      'sent', 'delivered', 'read',
                                      'cancelled', 'temporary-failure',
                                      'permanent-failure',
                                      'technical-failure')),
    priority         smallint NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 5,
    locked_by        text,
    locked_until     timestamptz,
    provider         text,
    provider_id      text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    delivered_at     timestamptz,
    read_at          timestamptz,
    FOREIGN KEY (school_id, message_id)
        REFERENCES msgr_messages (school_id, message_id),
    UNIQUE (message_id, recipient_type, recipient_id, channel, address,
            purpose)
);

-- what the sender claims: due, ordered as it takes them
CREATE INDEX msgr_deliveries_due
    ON msgr_deliveries (priority, run_at, delivery_id)
    WHERE state IN ('scheduled', 'queued');

-- leases to take back from a sender that died
CREATE INDEX msgr_deliveries_leased
    ON msgr_deliveries (locked_until)
    WHERE state = 'sending';

CREATE INDEX msgr_deliveries_message
    ON msgr_deliveries (school_id, message_id, delivery_id);

-- a parent's inbox: their Xpressions
CREATE INDEX msgr_deliveries_inbox
    ON msgr_deliveries (school_id, recipient_id, delivery_id DESC)
    WHERE channel = 'xpressions' AND recipient_type = 'contact';

CREATE INDEX msgr_deliveries_provider
    ON msgr_deliveries (provider, provider_id)
    WHERE provider_id IS NOT NULL;


CREATE FUNCTION msgr_delivery_terminal(p_state text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_state IN ('read', 'cancelled', 'temporary-failure',
                       'permanent-failure', 'technical-failure')
$$;

-- A terminal state is final; a delivered message can only be read.
CREATE FUNCTION msgr_deliveries_state_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF msgr_delivery_terminal(OLD.state)
           OR (OLD.state = 'delivered' AND NEW.state <> 'read')
        THEN
            RAISE EXCEPTION 'delivery % cannot go from % to %',
                OLD.delivery_id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER msgr_deliveries_state
    BEFORE UPDATE ON msgr_deliveries
    FOR EACH ROW EXECUTE FUNCTION msgr_deliveries_state_guard();


-- The school's sending PIN: an Argon2id hash (libsodium's crypto_pwhash_str).
CREATE TABLE msgr_sending_pins (
    school_id    bigint PRIMARY KEY REFERENCES msgr_schools (school_id),
    pin_hash     text NOT NULL CHECK (pin_hash LIKE '$argon2id$%'),
    set_by       text NOT NULL,
    set_at       timestamptz NOT NULL DEFAULT now()
);

-- Wrong PINs, per key; five within 15 minutes lock that key's sending for
-- 15 minutes (msgr_send_locks).
CREATE TABLE msgr_pin_failures (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    key_id       text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX msgr_pin_failures_key
    ON msgr_pin_failures (school_id, key_id, at);

CREATE TABLE msgr_send_locks (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    key_id       text NOT NULL,
    locked_until timestamptz NOT NULL,
    PRIMARY KEY (school_id, key_id)
);

-- What happened to sending's security: a PIN set, a key locked.
CREATE TABLE msgr_sending_audit (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    event        text NOT NULL CHECK (event IN ('pin_set', 'send_locked')),
    detail       jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX msgr_sending_audit_school
    ON msgr_sending_audit (school_id, audit_id DESC);

-- The answers to POST /v1/messages with an Idempotency-Key, for 24 hours.
CREATE TABLE msgr_idempotency (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    key_id       text NOT NULL,
    idem_key     text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    body_hash    text NOT NULL,
    status       integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_id, key_id, idem_key)
);

CREATE INDEX msgr_idempotency_age ON msgr_idempotency (created_at);

-- Each key's last send_to, for sending.default_send_to = last_chosen.
CREATE TABLE msgr_send_defaults (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    key_id       text NOT NULL,
    send_to      text NOT NULL
                 CHECK (send_to IN ('primary_contact', 'all_contacts',
                                    'staff')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_id, key_id)
);


-- A message as the API shows it: its counts and cost as routed, and its
-- deliveries now, by channel and state.
CREATE FUNCTION msgr_message_json(m msgr_messages) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', m.message_id,
        'status', CASE WHEN m.status = 'scheduled' AND m.send_at <= now()
                       THEN 'queued' ELSE m.status END,
        'channels', to_jsonb(m.channels),
        'send_to', m.send_to,
        'groups', to_jsonb(m.groups),
        'students', to_jsonb(m.students),
        'subject', m.subject,
        'body', m.body,
        'sms_body', m.sms_body,
        'voice_body', m.voice_body,
        'translations', m.translations,
        'routing', m.routing,
        'routing_override', m.routing_override,
        'sender', m.sender,
        'sender_role', m.sender_role,
        'pin_used', m.pin_used,
        'send_at', to_char(m.send_at AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'created_at', to_char(m.created_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'cancelled_at', to_char(m.cancelled_at AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'counts', m.counts,
        'cost', m.cost,
        'states', (SELECT coalesce(jsonb_object_agg(s.channel, s.states),
                                   '{}')
                     FROM (SELECT x.channel,
                                  jsonb_object_agg(x.state, x.n) AS states
                             FROM (SELECT d.channel, d.state,
                                          count(*) AS n
                                     FROM msgr_deliveries d
                                    WHERE d.school_id = m.school_id
                                      AND d.message_id = m.message_id
                                    GROUP BY d.channel, d.state) x
                            GROUP BY x.channel) s))
$$;


-- Writes a message and its deliveries in one transaction and wakes the
-- sender.  p_message: {"channels","send_to","groups","students","subject",
-- "body","sms_body","voice_body","translations","routing",
-- "routing_override","send_at" (null: now),"counts","cost","pin_used"};
-- p_deliveries: [{"recipient_type","recipient_id","channel","address",
-- "purpose","language","subject","body","cost","after_minutes"}].
--
-- With an Idempotency-Key (p_idem) the first answer for that key is kept
-- for 24 hours: the same key and body (p_hash) get it back and nothing is
-- written; another body is refused.  Returns {"status": HTTP status,
-- "message": ...}, or {"status": 422, "error": "idempotency-key-reused"}.
CREATE FUNCTION msgr_message_send(p_school bigint, p_key text, p_role text,
                                  p_idem text, p_hash text,
                                  p_message jsonb, p_deliveries jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    prior   msgr_idempotency;
    msg     msgr_messages;
    at      timestamptz;
    answer  jsonb;
BEGIN
    IF p_idem IS NOT NULL THEN
        INSERT INTO msgr_idempotency (school_id, key_id, idem_key, body_hash,
                                      status, response)
        VALUES (p_school, p_key, p_idem, p_hash, 0, 'null')
        ON CONFLICT DO NOTHING;

        IF NOT FOUND THEN
            SELECT * INTO prior FROM msgr_idempotency
             WHERE school_id = p_school AND key_id = p_key
               AND idem_key = p_idem
               FOR UPDATE;

            IF prior.created_at > now() - interval '24 hours' THEN
                IF prior.body_hash <> p_hash THEN
                    RETURN jsonb_build_object('status', 422, 'error',
                                              'idempotency-key-reused');
                END IF;
                RETURN jsonb_build_object('status', prior.status,
                                          'message', prior.response,
                                          'replayed', true);
            END IF;

            UPDATE msgr_idempotency
               SET body_hash = p_hash, created_at = now()
             WHERE school_id = p_school AND key_id = p_key
               AND idem_key = p_idem;
        END IF;
    END IF;

    at := coalesce((p_message ->> 'send_at')::timestamptz, now());

    INSERT INTO msgr_messages (school_id, sender, sender_role, channels,
                               send_to, groups, students, subject, body,
                               sms_body, voice_body, translations, routing,
                               routing_override, status, send_at, counts,
                               cost, pin_used)
    SELECT p_school, p_key, p_role,
           ARRAY(SELECT jsonb_array_elements_text(p_message -> 'channels')),
           p_message ->> 'send_to',
           ARRAY(SELECT jsonb_array_elements_text(p_message -> 'groups')
                 ::bigint),
           ARRAY(SELECT jsonb_array_elements_text(p_message -> 'students')
                 ::bigint),
           p_message ->> 'subject', p_message ->> 'body',
           p_message ->> 'sms_body', p_message ->> 'voice_body',
           coalesce(p_message -> 'translations', '{}'),
           p_message ->> 'routing',
           coalesce((p_message ->> 'routing_override')::boolean, false),
           CASE WHEN at > now() THEN 'scheduled' ELSE 'queued' END,
           at, p_message -> 'counts', p_message -> 'cost',
           coalesce((p_message ->> 'pin_used')::boolean, false)
    RETURNING * INTO msg;

    INSERT INTO msgr_deliveries (school_id, message_id, recipient_type,
                                 recipient_id, channel, address, purpose,
                                 language, subject, body, cost, state,
                                 run_at)
    SELECT p_school, msg.message_id, d.recipient_type, d.recipient_id,
           d.channel, coalesce(d.address, ''), d.purpose, d.language,
           d.subject, d.body, d.cost,
           CASE WHEN msg.status = 'scheduled' OR d.after_minutes > 0
                THEN 'scheduled' ELSE 'queued' END,
           at + make_interval(mins => coalesce(d.after_minutes, 0))
      FROM jsonb_to_recordset(p_deliveries) AS d(
               recipient_type text, recipient_id bigint, channel text,
               address text, purpose text, language text, subject text,
               body text, cost bigint, after_minutes integer);

    INSERT INTO msgr_send_defaults (school_id, key_id, send_to)
    VALUES (p_school, p_key, msg.send_to)
    ON CONFLICT (school_id, key_id)
    DO UPDATE SET send_to = excluded.send_to, updated_at = now();

    answer := msgr_message_json(msg);

    IF p_idem IS NOT NULL THEN
        UPDATE msgr_idempotency SET status = 201, response = answer
         WHERE school_id = p_school AND key_id = p_key
           AND idem_key = p_idem;
    END IF;

    PERFORM pg_notify('msgr_outbox', p_school || ':' || msg.message_id);

    RETURN jsonb_build_object('status', 201, 'message', answer);
END
$$;


-- A wrong PIN from a key: the fifth within 15 minutes locks the key's
-- sending for 15 minutes, and the lock is audited.  Returns the lock's end,
-- or NULL with the attempts left.
CREATE FUNCTION msgr_pin_failed(p_school bigint, p_key text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n      integer;
    until  timestamptz;
BEGIN
    -- one key's failures one at a time, so the fifth is counted once
    PERFORM pg_advisory_xact_lock(hashtextextended(
                'msgr_pin:' || p_school || ':' || p_key, 0));

    INSERT INTO msgr_pin_failures (school_id, key_id) VALUES (p_school, p_key);

    SELECT count(*) INTO n FROM msgr_pin_failures
     WHERE school_id = p_school AND key_id = p_key
       AND at > now() - interval '15 minutes';

    IF n >= 5 THEN
        until := now() + interval '15 minutes';

        INSERT INTO msgr_send_locks (school_id, key_id, locked_until)
        VALUES (p_school, p_key, until)
        ON CONFLICT (school_id, key_id)
        DO UPDATE SET locked_until = excluded.locked_until;

        DELETE FROM msgr_pin_failures
         WHERE school_id = p_school AND key_id = p_key;

        INSERT INTO msgr_sending_audit (school_id, actor, event, detail)
        VALUES (p_school, p_key, 'send_locked',
                jsonb_build_object('failures', n, 'until',
                    to_char(until AT TIME ZONE 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS"Z"')));

        RETURN jsonb_build_object('locked_until',
                   to_char(until AT TIME ZONE 'UTC',
                           'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'retry_after',
                   ceil(extract(epoch FROM until - now()))::integer);
    END IF;

    RETURN jsonb_build_object('attempts_left', 5 - n);
END
$$;


-- Cancels what of a message has not been sent.  Returns the message, or
-- nothing when the school has no such message.
CREATE FUNCTION msgr_message_cancel(p_school bigint, p_message bigint)
RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
    msg  msgr_messages;
    n    bigint;
BEGIN
    SELECT * INTO msg FROM msgr_messages
     WHERE school_id = p_school AND message_id = p_message
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE msgr_deliveries SET state = 'cancelled'
     WHERE school_id = p_school AND message_id = p_message
       AND state IN ('scheduled', 'queued');
    GET DIAGNOSTICS n = ROW_COUNT;

    IF msg.status <> 'cancelled' THEN
        UPDATE msgr_messages
           SET status = 'cancelled', cancelled_at = now()
         WHERE school_id = p_school AND message_id = p_message
        RETURNING * INTO msg;
    END IF;

    RETURN NEXT msgr_message_json(msg)
                || jsonb_build_object('cancelled_deliveries', n);
END
$$;


-- The parents' app confirms an Xpression: received (delivered) or read.
-- The contact's backup SMS for that message is cancelled under the same
-- row locks, so a receipt and the backup never both happen.  Returns the
-- delivery's state, or nothing when it is not this contact's Xpression.
CREATE FUNCTION msgr_app_receipt(p_school bigint, p_contact bigint,
                                 p_delivery bigint, p_read boolean)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    d  msgr_deliveries;
BEGIN
    SELECT * INTO d FROM msgr_deliveries
     WHERE school_id = p_school AND delivery_id = p_delivery
       AND recipient_type = 'contact' AND recipient_id = p_contact
       AND channel = 'xpressions' AND purpose = 'primary'
       AND state NOT IN ('scheduled', 'cancelled')
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE msgr_deliveries SET state = 'cancelled',
           error = 'the app confirmed the Xpression first'
     WHERE school_id = p_school AND message_id = d.message_id
       AND recipient_type = 'contact' AND recipient_id = p_contact
       AND purpose = 'backup' AND state IN ('scheduled', 'queued');

    IF p_read AND NOT msgr_delivery_terminal(d.state) THEN
        UPDATE msgr_deliveries
           SET state = 'read', read_at = now(),
               delivered_at = coalesce(delivered_at, now())
         WHERE delivery_id = d.delivery_id
        RETURNING * INTO d;

    ELSIF NOT p_read AND NOT msgr_delivery_terminal(d.state)
          AND d.state <> 'delivered'
    THEN
        UPDATE msgr_deliveries
           SET state = 'delivered', delivered_at = now()
         WHERE delivery_id = d.delivery_id
        RETURNING * INTO d;
    END IF;

    RETURN NEXT d.state;
END
$$;
