-- A contact's JSON names every field it publishes: a column added to
-- msgr_contacts later is not shown until it is listed here.  A number or
-- an email cleared by a local edit ("" in overrides) reads null, as one the
-- MIS never gave does; so does a relationship the MIS did not give.

CREATE OR REPLACE FUNCTION msgr_contact_json(c msgr_contacts) RETURNS jsonb
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
               'phone_problems', c.phone_problems,
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
               'students', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                   'id', s.student_id,
                                   'first_name', s.first_name,
                                   'last_name', s.last_name,
                                   'reg_group', s.reg_group,
                                   'relationship',
                                   nullif(l.relationship, ''),
                                   'priority', l.priority,
                                   'correspondence', l.correspondence)
                                   ORDER BY l.priority, s.student_id), '[]')
                              FROM msgr_student_contacts l
                              JOIN msgr_students s
                                ON s.school_id = l.school_id
                               AND s.student_id = l.student_id
                             WHERE l.school_id = c.school_id
                               AND l.contact_id = c.contact_id
                               AND l.retired_at IS NULL
                               AND s.retired_at IS NULL))
$$;

-- A contact's ETag: a digest of its row version (p_version, its xmin: every
-- write replaces it), of everything its body is made of, the students
-- embedded in it included, and of p_view, the settings that change how the
-- API shows it (registration groups in names).  A PATCH compares If-Match
-- with it inside its UPDATE's WHERE, against the row as it is once locked.
CREATE FUNCTION msgr_contact_etag(p_version text, j jsonb, p_view text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || md5(coalesce(p_version, '') || ':' || coalesce(p_view, '')
                      || ':' || j::text) || '"'
$$;
