-- msgr_mis_sync(school, snapshot, sync_contacts): brings a school's MIS
-- tables (sql/0004_mis.sql) into step with one snapshot, as POST
-- /v1/mis/sync does, and returns what it did:
--
--   {"students":    {"created":n,"updated":n,"retired":n,"unchanged":n},
--    "contacts":    {...}, "staff": {...}, "groups": {...},
--    "memberships": {...}}
--
-- The module calls it as one statement, so it is one transaction: any
-- error leaves everything as it was.  The snapshot has been validated and
-- normalised in C (every key present with its type, mis_ids unique, every
-- reference resolves); the function still refuses, with SQLSTATE 22023
-- (invalid_parameter_value) and a message naming the culprit, a missing or
-- repeated mis_id, a contact named twice by one student, and a member that
-- is not in the snapshot (a group's student or staff member, a student's
-- contact when contacts are synced), rather than write half a picture.
--
-- Per kind (and per membership table, counted together as "memberships"):
--   created    a row the table did not have;
--   updated    a column changed, or a retired row came back (retired_at
--              back to NULL);
--   retired    a live row absent from the snapshot: retired_at = now();
--   unchanged  in the snapshot and already exactly so.
-- updated_at moves only when something changed.  Rows are never deleted.
-- msgr_contacts.overrides (local edits) is never written.
--
-- With p_sync_contacts false (the school's auto_sync_contacts is off),
-- msgr_contacts and msgr_student_contacts are not touched at all: "contacts"
-- is {"skipped": N} (N snapshot contacts) and "memberships" counts group
-- memberships only, with "skipped": N (N snapshot student-contact links).
--
-- Everything is set-based, one statement per table: the snapshot's rows
-- (src) less those the table already has exactly so (chg) go through one
-- INSERT ... ON CONFLICT ... DO UPDATE ... WHERE (...) IS DISTINCT FROM
-- (...) RETURNING (xmax = 0), and one UPDATE retires the live rows absent
-- from src.  chg is what keeps an unchanged re-sync from writing at all:
-- ON CONFLICT DO UPDATE locks (so writes) every conflicting row before it
-- looks at its WHERE; the WHERE stays, for a row changed meanwhile by
-- someone else.  A school of thousands syncs in a fraction of a second.
-- Every statement is scoped to p_school.  Two syncs of one school run one
-- after the other (a transaction-level advisory lock); syncs of different
-- schools do not wait for each other.

CREATE FUNCTION msgr_mis_sync(p_school bigint, p_snapshot jsonb,
                              p_sync_contacts boolean)
RETURNS jsonb
LANGUAGE plpgsql
-- Every join here is set against set, thousands of rows a side, where a
-- nested loop is quadratic; and the planner's guesses are poor for it
-- (jsonb_to_recordset is always "100 rows", a school's first sync finds
-- tables with no statistics), so it picks one: an unchanged re-sync of
-- 2,000 students took 16 s that way, and takes ~0.1 s with hash joins.
-- The cost that disabling adds to the nested loops that remain (a student's
-- own contacts list) would tip the plans over jit_above_cost, and JIT
-- compiling costs more than these queries: hence jit off.
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    v_bad        text;
    v_n          bigint;
    v_created    bigint;
    v_updated    bigint;
    v_retired    bigint;
    v_students   jsonb;
    v_contacts   jsonb;
    v_staff      jsonb;
    v_groups     jsonb;
    v_links      bigint;
    v_refs       bigint;
    m_n          bigint := 0;
    m_created    bigint := 0;
    m_updated    bigint := 0;
    m_retired    bigint := 0;
BEGIN
    -- One sync per school at a time.  The two-key form keeps these locks
    -- apart from single-key ones (msgrctl migrate's); the class key is
    -- hashtext('msgr_mis_sync'), the object key the school id (wrapped into
    -- int4: schools 2^31-1 apart would merely take turns).
    PERFORM pg_advisory_xact_lock(hashtext('msgr_mis_sync'),
                                  (p_school % 2147483647)::integer);

    PERFORM 1 FROM msgr_schools WHERE school_id = p_school;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'msgr_mis_sync: no school %', p_school
            USING ERRCODE = 'no_data_found';
    END IF;

    -- A list gone missing would otherwise read as "all of them left".
    SELECT k INTO v_bad
      FROM unnest(ARRAY['students', 'contacts', 'staff', 'groups']) k
     WHERE jsonb_typeof(p_snapshot->k) IS DISTINCT FROM 'array'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'msgr_mis_sync: the snapshot has no "%" array', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- ---------------------------------------------------------------------
    -- the snapshot must be whole: unique mis_ids, references that resolve

    SELECT CASE WHEN k.mis_id IS NULL THEN 'a ' || k.kind || ' has no mis_id'
                ELSE k.kind || ' ' || k.mis_id || ' is listed twice' END
      INTO v_bad
      FROM (SELECT 'student' AS kind, e->>'mis_id' AS mis_id
              FROM jsonb_array_elements(p_snapshot->'students') e
            UNION ALL
            SELECT 'contact', e->>'mis_id'
              FROM jsonb_array_elements(p_snapshot->'contacts') e
            UNION ALL
            SELECT 'staff member', e->>'mis_id'
              FROM jsonb_array_elements(p_snapshot->'staff') e
            UNION ALL
            SELECT 'group', e->>'mis_id'
              FROM jsonb_array_elements(p_snapshot->'groups') e) k
     GROUP BY k.kind, k.mis_id
    HAVING count(*) > 1 OR k.mis_id IS NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'msgr_mis_sync: %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT 'student ' || (s->>'mis_id') || ' names contact '
           || (c->>'mis_id') || ' twice' INTO v_bad
      FROM jsonb_array_elements(p_snapshot->'students') s,
           jsonb_array_elements(s->'contacts') c
     GROUP BY s->>'mis_id', c->>'mis_id'
    HAVING count(*) > 1
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'msgr_mis_sync: %', v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- ---------------------------------------------------------------------
    -- students

    WITH src AS MATERIALIZED (
        SELECT mis_id, first_name, last_name,
               coalesce(reg_group, '') AS reg_group,
               coalesce(year, '') AS year,
               status, leaving_date
          FROM jsonb_to_recordset(p_snapshot->'students')
               AS x(mis_id text, first_name text, last_name text,
                    reg_group text, year text, status text,
                    leaving_date date)
    ), chg AS (
        SELECT src.*
          FROM src
          LEFT JOIN msgr_students t
            ON t.school_id = p_school AND t.mis_id = src.mis_id
         WHERE t.mis_id IS NULL
            OR (t.first_name, t.last_name, t.reg_group, t.year, t.status,
                t.leaving_date, t.retired_at IS NULL)
               IS DISTINCT FROM
               (src.first_name, src.last_name, src.reg_group, src.year,
                src.status, src.leaving_date, true)
    ), up AS (
        INSERT INTO msgr_students AS t
               (school_id, mis_id, first_name, last_name, reg_group, year,
                status, leaving_date)
        SELECT p_school, mis_id, first_name, last_name, reg_group, year,
               status, leaving_date
          FROM chg
        ON CONFLICT (school_id, mis_id) DO UPDATE
           SET first_name = EXCLUDED.first_name,
               last_name = EXCLUDED.last_name,
               reg_group = EXCLUDED.reg_group,
               year = EXCLUDED.year,
               status = EXCLUDED.status,
               leaving_date = EXCLUDED.leaving_date,
               retired_at = NULL,
               updated_at = now()
         WHERE (t.first_name, t.last_name, t.reg_group, t.year, t.status,
                t.leaving_date, t.retired_at IS NULL)
               IS DISTINCT FROM
               (EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.reg_group,
                EXCLUDED.year, EXCLUDED.status, EXCLUDED.leaving_date, true)
        RETURNING (t.xmax = 0) AS created
    ), ret AS (
        UPDATE msgr_students t
           SET retired_at = now(), updated_at = now()
         WHERE t.school_id = p_school
           AND t.retired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM src WHERE src.mis_id = t.mis_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM src),
           (SELECT count(*) FILTER (WHERE created) FROM up),
           (SELECT count(*) FILTER (WHERE NOT created) FROM up),
           (SELECT count(*) FROM ret)
      INTO v_n, v_created, v_updated, v_retired;

    v_students := jsonb_build_object(
        'created', v_created, 'updated', v_updated, 'retired', v_retired,
        'unchanged', v_n - v_created - v_updated);

    -- many new rows: fresh statistics, so that the foreign-key checks of the
    -- memberships below are planned for the table as it now is
    IF v_created >= 500 THEN
        ANALYZE msgr_students;
    END IF;

    -- ---------------------------------------------------------------------
    -- contacts (their base columns; overrides are the school's own)

    IF p_sync_contacts THEN
        WITH src AS MATERIALIZED (
            SELECT mis_id, coalesce(title, '') AS title, first_name,
                   last_name, home_phone, work_phone, mobile_phone, email,
                   coalesce(language, 'en') AS language,
                   coalesce(phone_problems, '{}') AS phone_problems
              FROM jsonb_to_recordset(p_snapshot->'contacts')
                   AS x(mis_id text, title text, first_name text,
                        last_name text, home_phone text, work_phone text,
                        mobile_phone text, email text, language text,
                        phone_problems jsonb)
        ), chg AS (
            SELECT src.*
              FROM src
              LEFT JOIN msgr_contacts t
                ON t.school_id = p_school AND t.mis_id = src.mis_id
             WHERE t.mis_id IS NULL
                OR (t.title, t.first_name, t.last_name, t.home_phone,
                    t.work_phone, t.mobile_phone, t.email, t.language,
                    t.phone_problems, t.retired_at IS NULL)
                   IS DISTINCT FROM
                   (src.title, src.first_name, src.last_name, src.home_phone,
                    src.work_phone, src.mobile_phone, src.email,
                    src.language, src.phone_problems, true)
        ), up AS (
            INSERT INTO msgr_contacts AS t
                   (school_id, mis_id, title, first_name, last_name,
                    home_phone, work_phone, mobile_phone, email, language,
                    phone_problems)
            SELECT p_school, mis_id, title, first_name, last_name,
                   home_phone, work_phone, mobile_phone, email, language,
                   phone_problems
              FROM chg
            ON CONFLICT (school_id, mis_id) DO UPDATE
               SET title = EXCLUDED.title,
                   first_name = EXCLUDED.first_name,
                   last_name = EXCLUDED.last_name,
                   home_phone = EXCLUDED.home_phone,
                   work_phone = EXCLUDED.work_phone,
                   mobile_phone = EXCLUDED.mobile_phone,
                   email = EXCLUDED.email,
                   language = EXCLUDED.language,
                   phone_problems = EXCLUDED.phone_problems,
                   retired_at = NULL,
                   updated_at = now()
             WHERE (t.title, t.first_name, t.last_name, t.home_phone,
                    t.work_phone, t.mobile_phone, t.email, t.language,
                    t.phone_problems, t.retired_at IS NULL)
                   IS DISTINCT FROM
                   (EXCLUDED.title, EXCLUDED.first_name, EXCLUDED.last_name,
                    EXCLUDED.home_phone, EXCLUDED.work_phone,
                    EXCLUDED.mobile_phone, EXCLUDED.email, EXCLUDED.language,
                    EXCLUDED.phone_problems, true)
            RETURNING (t.xmax = 0) AS created
        ), ret AS (
            UPDATE msgr_contacts t
               SET retired_at = now(), updated_at = now()
             WHERE t.school_id = p_school
               AND t.retired_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM src WHERE src.mis_id = t.mis_id)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM src),
               (SELECT count(*) FILTER (WHERE created) FROM up),
               (SELECT count(*) FILTER (WHERE NOT created) FROM up),
               (SELECT count(*) FROM ret)
          INTO v_n, v_created, v_updated, v_retired;

        v_contacts := jsonb_build_object(
            'created', v_created, 'updated', v_updated,
            'retired', v_retired, 'unchanged', v_n - v_created - v_updated);

        -- many new rows: fresh statistics, so that the foreign-key checks of the
        -- memberships below are planned for the table as it now is
        IF v_created >= 500 THEN
            ANALYZE msgr_contacts;
        END IF;
    ELSE
        v_contacts := jsonb_build_object(
            'skipped', coalesce(jsonb_array_length(p_snapshot->'contacts'),
                                0));
    END IF;

    -- ---------------------------------------------------------------------
    -- staff

    WITH src AS MATERIALIZED (
        SELECT mis_id, coalesce(title, '') AS title, first_name, last_name,
               work_phone, mobile_phone, email,
               coalesce(phone_problems, '{}') AS phone_problems
          FROM jsonb_to_recordset(p_snapshot->'staff')
               AS x(mis_id text, title text, first_name text,
                    last_name text, work_phone text, mobile_phone text,
                    email text, phone_problems jsonb)
    ), chg AS (
        SELECT src.*
          FROM src
          LEFT JOIN msgr_staff t
            ON t.school_id = p_school AND t.mis_id = src.mis_id
         WHERE t.mis_id IS NULL
            OR (t.title, t.first_name, t.last_name, t.work_phone,
                t.mobile_phone, t.email, t.phone_problems,
                t.retired_at IS NULL)
               IS DISTINCT FROM
               (src.title, src.first_name, src.last_name, src.work_phone,
                src.mobile_phone, src.email, src.phone_problems, true)
    ), up AS (
        INSERT INTO msgr_staff AS t
               (school_id, mis_id, title, first_name, last_name, work_phone,
                mobile_phone, email, phone_problems)
        SELECT p_school, mis_id, title, first_name, last_name, work_phone,
               mobile_phone, email, phone_problems
          FROM chg
        ON CONFLICT (school_id, mis_id) DO UPDATE
           SET title = EXCLUDED.title,
               first_name = EXCLUDED.first_name,
               last_name = EXCLUDED.last_name,
               work_phone = EXCLUDED.work_phone,
               mobile_phone = EXCLUDED.mobile_phone,
               email = EXCLUDED.email,
               phone_problems = EXCLUDED.phone_problems,
               retired_at = NULL,
               updated_at = now()
         WHERE (t.title, t.first_name, t.last_name, t.work_phone,
                t.mobile_phone, t.email, t.phone_problems,
                t.retired_at IS NULL)
               IS DISTINCT FROM
               (EXCLUDED.title, EXCLUDED.first_name, EXCLUDED.last_name,
                EXCLUDED.work_phone, EXCLUDED.mobile_phone, EXCLUDED.email,
                EXCLUDED.phone_problems, true)
        RETURNING (t.xmax = 0) AS created
    ), ret AS (
        UPDATE msgr_staff t
           SET retired_at = now(), updated_at = now()
         WHERE t.school_id = p_school
           AND t.retired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM src WHERE src.mis_id = t.mis_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM src),
           (SELECT count(*) FILTER (WHERE created) FROM up),
           (SELECT count(*) FILTER (WHERE NOT created) FROM up),
           (SELECT count(*) FROM ret)
      INTO v_n, v_created, v_updated, v_retired;

    v_staff := jsonb_build_object(
        'created', v_created, 'updated', v_updated, 'retired', v_retired,
        'unchanged', v_n - v_created - v_updated);

    -- many new rows: fresh statistics, so that the foreign-key checks of the
    -- memberships below are planned for the table as it now is
    IF v_created >= 500 THEN
        ANALYZE msgr_staff;
    END IF;

    -- ---------------------------------------------------------------------
    -- groups

    WITH src AS MATERIALIZED (
        SELECT mis_id, name, type
          FROM jsonb_to_recordset(p_snapshot->'groups')
               AS x(mis_id text, name text, type text)
    ), chg AS (
        SELECT src.*
          FROM src
          LEFT JOIN msgr_groups t
            ON t.school_id = p_school AND t.mis_id = src.mis_id
         WHERE t.mis_id IS NULL
            OR (t.name, t.type, t.retired_at IS NULL)
               IS DISTINCT FROM (src.name, src.type, true)
    ), up AS (
        INSERT INTO msgr_groups AS t (school_id, mis_id, name, type)
        SELECT p_school, mis_id, name, type
          FROM chg
        ON CONFLICT (school_id, mis_id) DO UPDATE
           SET name = EXCLUDED.name,
               type = EXCLUDED.type,
               retired_at = NULL,
               updated_at = now()
         WHERE (t.name, t.type, t.retired_at IS NULL)
               IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.type, true)
        RETURNING (t.xmax = 0) AS created
    ), ret AS (
        UPDATE msgr_groups t
           SET retired_at = now(), updated_at = now()
         WHERE t.school_id = p_school
           AND t.retired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM src WHERE src.mis_id = t.mis_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM src),
           (SELECT count(*) FILTER (WHERE created) FROM up),
           (SELECT count(*) FILTER (WHERE NOT created) FROM up),
           (SELECT count(*) FROM ret)
      INTO v_n, v_created, v_updated, v_retired;

    v_groups := jsonb_build_object(
        'created', v_created, 'updated', v_updated, 'retired', v_retired,
        'unchanged', v_n - v_created - v_updated);

    -- ---------------------------------------------------------------------
    -- memberships.  Every snapshot record is a live row now and every
    -- other row is retired, so a member that joins no live row is one the
    -- snapshot does not have: the snapshot is refused (nothing of it stays,
    -- the whole call is one transaction).  Found by counting, so the check
    -- costs nothing when all is well; only then is the culprit looked up.

    IF p_sync_contacts THEN
        WITH ref AS MATERIALIZED (
            SELECT s.student_id, c.contact_id,
                   coalesce(l.relationship, '') AS relationship,
                   l.priority,
                   coalesce(l.correspondence, true) AS correspondence
              FROM jsonb_to_recordset(p_snapshot->'students')
                   AS x(mis_id text, contacts jsonb)
             CROSS JOIN jsonb_to_recordset(x.contacts)
                   AS l(mis_id text, relationship text, priority integer,
                        correspondence boolean)
              JOIN msgr_students s
                ON s.school_id = p_school AND s.mis_id = x.mis_id
              LEFT JOIN msgr_contacts c
                ON c.school_id = p_school AND c.mis_id = l.mis_id
               AND c.retired_at IS NULL
        ), src AS MATERIALIZED (
            SELECT * FROM ref WHERE contact_id IS NOT NULL
        ), chg AS (
            SELECT src.*
              FROM src
              LEFT JOIN msgr_student_contacts t
                ON t.school_id = p_school AND t.student_id = src.student_id
               AND t.contact_id = src.contact_id
             WHERE t.student_id IS NULL
                OR (t.relationship, t.priority, t.correspondence,
                    t.retired_at IS NULL)
                   IS DISTINCT FROM
                   (src.relationship, src.priority, src.correspondence, true)
        ), up AS (
            INSERT INTO msgr_student_contacts AS t
                   (school_id, student_id, contact_id, relationship,
                    priority, correspondence)
            SELECT p_school, student_id, contact_id, relationship, priority,
                   correspondence
              FROM chg
            ON CONFLICT (school_id, student_id, contact_id) DO UPDATE
               SET relationship = EXCLUDED.relationship,
                   priority = EXCLUDED.priority,
                   correspondence = EXCLUDED.correspondence,
                   retired_at = NULL
             WHERE (t.relationship, t.priority, t.correspondence,
                    t.retired_at IS NULL)
                   IS DISTINCT FROM
                   (EXCLUDED.relationship, EXCLUDED.priority,
                    EXCLUDED.correspondence, true)
            RETURNING (t.xmax = 0) AS created
        ), ret AS (
            UPDATE msgr_student_contacts t
               SET retired_at = now()
             WHERE t.school_id = p_school
               AND t.retired_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM src
                                WHERE src.student_id = t.student_id
                                  AND src.contact_id = t.contact_id)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ref),
               (SELECT count(*) FROM src),
               (SELECT count(*) FILTER (WHERE created) FROM up),
               (SELECT count(*) FILTER (WHERE NOT created) FROM up),
               (SELECT count(*) FROM ret)
          INTO v_refs, v_n, v_created, v_updated, v_retired;

        IF v_n <> v_refs THEN
            SELECT 'student ' || x.mis_id || ' names contact ' || l.mis_id
              INTO v_bad
              FROM jsonb_to_recordset(p_snapshot->'students')
                   AS x(mis_id text, contacts jsonb)
             CROSS JOIN jsonb_to_recordset(x.contacts) AS l(mis_id text)
             WHERE NOT EXISTS (
                    SELECT 1
                      FROM jsonb_to_recordset(p_snapshot->'contacts')
                           AS c(mis_id text)
                     WHERE c.mis_id = l.mis_id)
             LIMIT 1;
            RAISE EXCEPTION 'msgr_mis_sync: % not in the snapshot',
                            coalesce(v_bad, 'a contact')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;

        m_n := m_n + v_n;
        m_created := m_created + v_created;
        m_updated := m_updated + v_updated;
        m_retired := m_retired + v_retired;
    ELSE
        SELECT count(*) INTO v_links
          FROM jsonb_array_elements(p_snapshot->'students') s,
               jsonb_array_elements(s->'contacts') c;
    END IF;

    -- A group lists a member once; a repeat in the snapshot is the same
    -- membership, hence DISTINCT.
    WITH ref AS MATERIALIZED (
        SELECT g.group_id, s.student_id
          FROM jsonb_to_recordset(p_snapshot->'groups')
               AS x(mis_id text, students jsonb)
         CROSS JOIN jsonb_array_elements_text(x.students) AS m(mis_id)
          JOIN msgr_groups g
            ON g.school_id = p_school AND g.mis_id = x.mis_id
          LEFT JOIN msgr_students s
            ON s.school_id = p_school AND s.mis_id = m.mis_id
           AND s.retired_at IS NULL
    ), src AS MATERIALIZED (
        SELECT DISTINCT group_id, student_id
          FROM ref
         WHERE student_id IS NOT NULL
    ), chg AS (
        SELECT src.*
          FROM src
          LEFT JOIN msgr_group_students t
            ON t.school_id = p_school AND t.group_id = src.group_id
           AND t.student_id = src.student_id
         WHERE t.student_id IS NULL OR t.retired_at IS NOT NULL
    ), up AS (
        INSERT INTO msgr_group_students AS t (school_id, group_id, student_id)
        SELECT p_school, group_id, student_id
          FROM chg
        ON CONFLICT (school_id, group_id, student_id) DO UPDATE
           SET retired_at = NULL
         WHERE t.retired_at IS NOT NULL
        RETURNING (t.xmax = 0) AS created
    ), ret AS (
        UPDATE msgr_group_students t
           SET retired_at = now()
         WHERE t.school_id = p_school
           AND t.retired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM src
                            WHERE src.group_id = t.group_id
                              AND src.student_id = t.student_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FILTER (WHERE student_id IS NULL) FROM ref),
           (SELECT count(*) FROM src),
           (SELECT count(*) FILTER (WHERE created) FROM up),
           (SELECT count(*) FILTER (WHERE NOT created) FROM up),
           (SELECT count(*) FROM ret)
      INTO v_refs, v_n, v_created, v_updated, v_retired;

    IF v_refs > 0 THEN
        SELECT 'group ' || x.mis_id || ' names student ' || m.mis_id
          INTO v_bad
          FROM jsonb_to_recordset(p_snapshot->'groups')
               AS x(mis_id text, students jsonb)
         CROSS JOIN jsonb_array_elements_text(x.students) AS m(mis_id)
         WHERE NOT EXISTS (
                SELECT 1
                  FROM jsonb_to_recordset(p_snapshot->'students')
                       AS s(mis_id text)
                 WHERE s.mis_id = m.mis_id)
         LIMIT 1;
        RAISE EXCEPTION 'msgr_mis_sync: % not in the snapshot',
                        coalesce(v_bad, 'a student')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    m_n := m_n + v_n;
    m_created := m_created + v_created;
    m_updated := m_updated + v_updated;
    m_retired := m_retired + v_retired;

    -- A staff member may be in both a group's "staff" and its "teachers":
    -- two memberships (teacher false and true).
    WITH ref AS MATERIALIZED (
        SELECT g.group_id, f.staff_id, m.teacher
          FROM jsonb_to_recordset(p_snapshot->'groups')
               AS x(mis_id text, staff jsonb, teachers jsonb)
         CROSS JOIN LATERAL (
                SELECT e, false FROM jsonb_array_elements_text(x.staff) e
                UNION ALL
                SELECT e, true FROM jsonb_array_elements_text(x.teachers) e
               ) AS m(mis_id, teacher)
          JOIN msgr_groups g
            ON g.school_id = p_school AND g.mis_id = x.mis_id
          LEFT JOIN msgr_staff f
            ON f.school_id = p_school AND f.mis_id = m.mis_id
           AND f.retired_at IS NULL
    ), src AS MATERIALIZED (
        SELECT DISTINCT group_id, staff_id, teacher
          FROM ref
         WHERE staff_id IS NOT NULL
    ), chg AS (
        SELECT src.*
          FROM src
          LEFT JOIN msgr_group_staff t
            ON t.school_id = p_school AND t.group_id = src.group_id
           AND t.staff_id = src.staff_id AND t.teacher = src.teacher
         WHERE t.staff_id IS NULL OR t.retired_at IS NOT NULL
    ), up AS (
        INSERT INTO msgr_group_staff AS t
               (school_id, group_id, staff_id, teacher)
        SELECT p_school, group_id, staff_id, teacher
          FROM chg
        ON CONFLICT (school_id, group_id, staff_id, teacher) DO UPDATE
           SET retired_at = NULL
         WHERE t.retired_at IS NOT NULL
        RETURNING (t.xmax = 0) AS created
    ), ret AS (
        UPDATE msgr_group_staff t
           SET retired_at = now()
         WHERE t.school_id = p_school
           AND t.retired_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM src
                            WHERE src.group_id = t.group_id
                              AND src.staff_id = t.staff_id
                              AND src.teacher = t.teacher)
        RETURNING 1
    )
    SELECT (SELECT count(*) FILTER (WHERE staff_id IS NULL) FROM ref),
           (SELECT count(*) FROM src),
           (SELECT count(*) FILTER (WHERE created) FROM up),
           (SELECT count(*) FILTER (WHERE NOT created) FROM up),
           (SELECT count(*) FROM ret)
      INTO v_refs, v_n, v_created, v_updated, v_retired;

    IF v_refs > 0 THEN
        SELECT 'group ' || x.mis_id || ' names staff ' || m.mis_id
          INTO v_bad
          FROM jsonb_to_recordset(p_snapshot->'groups')
               AS x(mis_id text, staff jsonb, teachers jsonb)
         CROSS JOIN jsonb_array_elements_text(x.staff || x.teachers)
               AS m(mis_id)
         WHERE NOT EXISTS (
                SELECT 1
                  FROM jsonb_to_recordset(p_snapshot->'staff')
                       AS f(mis_id text)
                 WHERE f.mis_id = m.mis_id)
         LIMIT 1;
        RAISE EXCEPTION 'msgr_mis_sync: % not in the snapshot',
                        coalesce(v_bad, 'a staff member')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    m_n := m_n + v_n;
    m_created := m_created + v_created;
    m_updated := m_updated + v_updated;
    m_retired := m_retired + v_retired;

    RETURN jsonb_build_object(
        'students', v_students,
        'contacts', v_contacts,
        'staff', v_staff,
        'groups', v_groups,
        'memberships',
            jsonb_build_object(
                'created', m_created, 'updated', m_updated,
                'retired', m_retired,
                'unchanged', m_n - m_created - m_updated)
            || CASE WHEN p_sync_contacts THEN '{}'::jsonb
                    ELSE jsonb_build_object('skipped', v_links) END);
END
$$;
