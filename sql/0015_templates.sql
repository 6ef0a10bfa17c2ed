-- Templates: a school's saved messages and letter templates, every version
-- of each (a change never loses the text it replaced), the link of a
-- template copied from msgr's standard library (share/library/), and the
-- template a message was sent from.  docs/templates.md describes them.

CREATE TABLE msgr_templates (
    school_id        bigint NOT NULL REFERENCES msgr_schools (school_id),
    template_id      bigint GENERATED ALWAYS AS IDENTITY,
    kind             text NOT NULL
                     CHECK (kind IN ('saved_message', 'letter')),
    name             text NOT NULL,
    category         text NOT NULL DEFAULT '',
    channels         text[] NOT NULL DEFAULT '{}',
    subject          text,
    body             text NOT NULL,
    sms_body         text,
    voice_body       text,
    version          integer NOT NULL DEFAULT 1,
    -- copied from the library: its key, the library version copied and
    -- the digest of the texts as copied (another digest: personalised)
    library_key      text,
    library_version  integer,
    library_digest   text,
    -- what made this version: created, edited, library
    change           text NOT NULL DEFAULT 'created'
                     CHECK (change IN ('created', 'edited', 'library')),
    changed_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_id, template_id),
    UNIQUE (template_id)
);

CREATE UNIQUE INDEX msgr_templates_name
    ON msgr_templates (school_id, lower(name));

CREATE UNIQUE INDEX msgr_templates_library
    ON msgr_templates (school_id, library_key)
    WHERE library_key IS NOT NULL;


CREATE TABLE msgr_template_versions (
    school_id        bigint NOT NULL,
    template_id      bigint NOT NULL,
    version          integer NOT NULL,
    kind             text NOT NULL,
    name             text NOT NULL,
    category         text NOT NULL,
    channels         text[] NOT NULL,
    subject          text,
    body             text NOT NULL,
    sms_body         text,
    voice_body       text,
    library_version  integer,
    change           text NOT NULL,
    changed_by       text NOT NULL,
    changed_at       timestamptz NOT NULL,
    PRIMARY KEY (school_id, template_id, version),
    FOREIGN KEY (school_id, template_id)
        REFERENCES msgr_templates (school_id, template_id) ON DELETE CASCADE
);


-- The texts a library copy is compared by: a school template whose digest
-- is no longer the one copied has been personalised.
CREATE FUNCTION msgr_template_digest(p_subject text, p_body text,
                                     p_sms text, p_voice text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(jsonb_build_array(p_subject, p_body, p_sms, p_voice)::text)
$$;


-- Every change is a new version, and every version is kept.
CREATE FUNCTION msgr_template_versioned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION msgr_template_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO msgr_template_versions (school_id, template_id, version, kind,
                                        name, category, channels, subject,
                                        body, sms_body, voice_body,
                                        library_version, change, changed_by,
                                        changed_at)
    VALUES (NEW.school_id, NEW.template_id, NEW.version, NEW.kind, NEW.name,
            NEW.category, NEW.channels, NEW.subject, NEW.body, NEW.sms_body,
            NEW.voice_body, NEW.library_version, NEW.change, NEW.changed_by,
            NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER msgr_templates_versioned
    BEFORE UPDATE ON msgr_templates
    FOR EACH ROW EXECUTE FUNCTION msgr_template_versioned();

CREATE TRIGGER msgr_templates_keep
    AFTER INSERT OR UPDATE ON msgr_templates
    FOR EACH ROW EXECUTE FUNCTION msgr_template_keep();


CREATE FUNCTION msgr_template_json(t msgr_templates) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.template_id,
        'kind', t.kind,
        'name', t.name,
        'category', t.category,
        'channels', to_jsonb(t.channels),
        'subject', t.subject,
        'body', t.body,
        'sms_body', t.sms_body,
        'voice_body', t.voice_body,
        'version', t.version,
        'library', CASE WHEN t.library_key IS NULL THEN NULL
                   ELSE jsonb_build_object(
                       'key', t.library_key,
                       'version', t.library_version,
                       'personalised',
                       msgr_template_digest(t.subject, t.body, t.sms_body,
                                            t.voice_body)
                       <> t.library_digest) END,
        'updated_by', t.changed_by,
        'created_at', to_char(t.created_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'updated_at', to_char(t.updated_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;


-- The library (the document msgr_library names, {"version", "templates":
-- [...]}) as this school has it: each template with its state, missing,
-- current, personalised (the school changed its text since copying it) or
-- behind (the library has a newer version), and what a copy would do with
-- it: add, update, overwrite (personalised, and newer upstream) or nothing.
CREATE FUNCTION msgr_library_state(p_school bigint, p_library jsonb)
RETURNS TABLE (lib jsonb, ord bigint, template msgr_templates, state text,
               action text)
LANGUAGE sql STABLE AS $$
    SELECT l.lib, l.ord, t,
           s.state,
           CASE WHEN s.state = 'missing' THEN 'add'
                WHEN s.state = 'behind' THEN 'update'
                WHEN s.state = 'personalised'
                     AND t.library_version < (l.lib ->> 'version')::integer
                THEN 'overwrite'
                ELSE NULL END
      FROM jsonb_array_elements(p_library -> 'templates')
           WITH ORDINALITY AS l(lib, ord)
      LEFT JOIN msgr_templates t
        ON t.school_id = p_school AND t.library_key = l.lib ->> 'key'
     CROSS JOIN LATERAL (SELECT CASE
           WHEN t.template_id IS NULL THEN 'missing'
           WHEN msgr_template_digest(t.subject, t.body, t.sms_body,
                                     t.voice_body) <> t.library_digest
           THEN 'personalised'
           WHEN t.library_version < (l.lib ->> 'version')::integer
           THEN 'behind'
           ELSE 'current' END AS state) s
$$;


-- GET /v1/templates/library: {"version", "items": [...]}
CREATE FUNCTION msgr_library_json(p_school bigint, p_library jsonb)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'version', p_library -> 'version',
        'items', coalesce(jsonb_agg(s.lib || jsonb_build_object(
                     'state', s.state,
                     'template_id', (s.template).template_id,
                     'school_version', (s.template).library_version)
                     ORDER BY s.ord), '[]'))
      FROM msgr_library_state(p_school, p_library) s
$$;


-- POST /v1/templates/library/copy: brings the library into the school.
-- Missing templates are added (a name the school uses already gets
-- " (library)"), ones behind are updated, personalised ones the library
-- has changed since are overwritten (their text stays in their versions);
-- personalised ones the library has not changed are left alone.  With
-- p_dry nothing is written.  {"added": [...], "updated": [...],
-- "overwritten": [...]}, each {"key", "name", "template_id"}.
CREATE FUNCTION msgr_library_copy(p_school bigint, p_library jsonb,
                                  p_dry boolean, p_actor text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s       record;
    l       jsonb;
    nm      text;
    id      bigint;
    n       integer;
    answer  jsonb := '{"added": [], "updated": [], "overwritten": []}';
    list    text;
BEGIN
    -- one copy at a time per school, so a template is added once
    PERFORM pg_advisory_xact_lock(hashtextextended(
                'msgr_library:' || p_school, 0));

    FOR s IN SELECT * FROM msgr_library_state(p_school, p_library)
              WHERE action IS NOT NULL ORDER BY ord
    LOOP
        l := s.lib;
        id := (s.template).template_id;
        nm := coalesce((s.template).name, l ->> 'name');

        IF s.action = 'add' THEN
            list := 'added';
            n := 1;
            WHILE EXISTS (SELECT 1 FROM msgr_templates
                           WHERE school_id = p_school
                             AND lower(name) = lower(nm)) LOOP
                nm := (l ->> 'name') || ' (library'
                      || CASE WHEN n > 1 THEN ' ' || n ELSE '' END || ')';
                n := n + 1;
            END LOOP;

            IF NOT p_dry THEN
                INSERT INTO msgr_templates (school_id, kind, name, category,
                                            channels, subject, body, sms_body,
                                            voice_body, library_key,
                                            library_version, library_digest,
                                            change, changed_by)
                VALUES (p_school, l ->> 'kind', nm,
                        coalesce(l ->> 'category', ''),
                        ARRAY(SELECT jsonb_array_elements_text(
                                  coalesce(l -> 'channels', '[]'))),
                        l ->> 'subject', l ->> 'body', l ->> 'sms_body',
                        l ->> 'voice_body', l ->> 'key',
                        (l ->> 'version')::integer,
                        msgr_template_digest(l ->> 'subject', l ->> 'body',
                                             l ->> 'sms_body',
                                             l ->> 'voice_body'),
                        'library', p_actor)
                RETURNING template_id INTO id;
            END IF;

        ELSE
            list := CASE WHEN s.action = 'update' THEN 'updated'
                         ELSE 'overwritten' END;

            IF NOT p_dry THEN
                UPDATE msgr_templates
                   SET kind = l ->> 'kind',
                       category = coalesce(l ->> 'category', ''),
                       channels = ARRAY(SELECT jsonb_array_elements_text(
                                      coalesce(l -> 'channels', '[]'))),
                       subject = l ->> 'subject', body = l ->> 'body',
                       sms_body = l ->> 'sms_body',
                       voice_body = l ->> 'voice_body',
                       library_version = (l ->> 'version')::integer,
                       library_digest = msgr_template_digest(
                           l ->> 'subject', l ->> 'body', l ->> 'sms_body',
                           l ->> 'voice_body'),
                       change = 'library', changed_by = p_actor
                 WHERE school_id = p_school AND template_id = id;
            END IF;
        END IF;

        answer := jsonb_set(answer, ARRAY[list],
                            (answer -> list) || jsonb_build_array(
                                jsonb_build_object('key', l ->> 'key',
                                                   'name', nm,
                                                   'template_id', id,
                                                   'version',
                                                   l -> 'version')));
    END LOOP;

    RETURN answer;
END
$$;
