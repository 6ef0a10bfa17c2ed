-- The school's MIS: students, their parental contacts, staff and groups,
-- kept in step by POST /v1/mis/sync.  Records and memberships absent from
-- the latest snapshot are retired (retired_at set), never deleted, and come
-- back when they reappear.  Ids are msgr's own; mis_id is the MIS's.

CREATE TABLE msgr_students (
    school_id     bigint NOT NULL REFERENCES msgr_schools (school_id),
    student_id    bigint GENERATED ALWAYS AS IDENTITY,
    mis_id        text NOT NULL,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    reg_group     text NOT NULL DEFAULT '',
    year          text NOT NULL DEFAULT '',
    status        text NOT NULL
                  CHECK (status IN ('on_roll', 'guest', 'pre_admission',
                                    'leaver')),
    leaving_date  date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    PRIMARY KEY (school_id, student_id),
    UNIQUE (school_id, mis_id)
);

CREATE INDEX msgr_students_name
    ON msgr_students (school_id, lower(last_name), lower(first_name));

-- Contact details as the MIS has them; local edits (when the school allows
-- them) live in overrides, {"field": value}, which a sync never touches.
CREATE TABLE msgr_contacts (
    school_id       bigint NOT NULL REFERENCES msgr_schools (school_id),
    contact_id      bigint GENERATED ALWAYS AS IDENTITY,
    mis_id          text NOT NULL,
    title           text NOT NULL DEFAULT '',
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    home_phone      text,
    work_phone      text,
    mobile_phone    text,
    email           text,
    language        text NOT NULL DEFAULT 'en',
    phone_problems  jsonb NOT NULL DEFAULT '{}',
    overrides       jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(overrides) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    PRIMARY KEY (school_id, contact_id),
    UNIQUE (school_id, mis_id)
);

CREATE INDEX msgr_contacts_name
    ON msgr_contacts (school_id, lower(last_name), lower(first_name));

CREATE TABLE msgr_student_contacts (
    school_id       bigint NOT NULL,
    student_id      bigint NOT NULL,
    contact_id      bigint NOT NULL,
    relationship    text NOT NULL DEFAULT '',
    priority        integer NOT NULL CHECK (priority BETWEEN 1 AND 99),
    correspondence  boolean NOT NULL DEFAULT true,
    retired_at      timestamptz,
    PRIMARY KEY (school_id, student_id, contact_id),
    FOREIGN KEY (school_id, student_id)
        REFERENCES msgr_students (school_id, student_id),
    FOREIGN KEY (school_id, contact_id)
        REFERENCES msgr_contacts (school_id, contact_id)
);

CREATE INDEX msgr_student_contacts_contact
    ON msgr_student_contacts (school_id, contact_id);

CREATE TABLE msgr_staff (
    school_id       bigint NOT NULL REFERENCES msgr_schools (school_id),
    staff_id        bigint GENERATED ALWAYS AS IDENTITY,
    mis_id          text NOT NULL,
    title           text NOT NULL DEFAULT '',
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    work_phone      text,
    mobile_phone    text,
    email           text,
    phone_problems  jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz,
    PRIMARY KEY (school_id, staff_id),
    UNIQUE (school_id, mis_id)
);

CREATE INDEX msgr_staff_name
    ON msgr_staff (school_id, lower(last_name), lower(first_name));

CREATE TABLE msgr_groups (
    school_id    bigint NOT NULL REFERENCES msgr_schools (school_id),
    group_id     bigint GENERATED ALWAYS AS IDENTITY,
    mis_id       text NOT NULL,
    name         text NOT NULL,
    type         text NOT NULL
                 CHECK (type IN ('class', 'registration', 'year', 'custom')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    PRIMARY KEY (school_id, group_id),
    UNIQUE (school_id, mis_id)
);

CREATE INDEX msgr_groups_name ON msgr_groups (school_id, lower(name));

-- Members of a group: students, staff, and (class groups) class teachers.
CREATE TABLE msgr_group_students (
    school_id    bigint NOT NULL,
    group_id     bigint NOT NULL,
    student_id   bigint NOT NULL,
    retired_at   timestamptz,
    PRIMARY KEY (school_id, group_id, student_id),
    FOREIGN KEY (school_id, group_id)
        REFERENCES msgr_groups (school_id, group_id),
    FOREIGN KEY (school_id, student_id)
        REFERENCES msgr_students (school_id, student_id)
);

CREATE TABLE msgr_group_staff (
    school_id    bigint NOT NULL,
    group_id     bigint NOT NULL,
    staff_id     bigint NOT NULL,
    teacher      boolean NOT NULL,
    retired_at   timestamptz,
    PRIMARY KEY (school_id, group_id, staff_id, teacher),
    FOREIGN KEY (school_id, group_id)
        REFERENCES msgr_groups (school_id, group_id),
    FOREIGN KEY (school_id, staff_id)
        REFERENCES msgr_staff (school_id, staff_id)
);

-- Custom merge tokens ("Head of Year 7" = "Miss Smith"), and a contact's
-- own value where it has one.
CREATE TABLE msgr_contact_attributes (
    school_id       bigint NOT NULL REFERENCES msgr_schools (school_id),
    attribute_id    bigint GENERATED ALWAYS AS IDENTITY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    default_value   text NOT NULL DEFAULT ''
                    CHECK (length(default_value) <= 1000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (school_id, attribute_id)
);

CREATE UNIQUE INDEX msgr_contact_attributes_name
    ON msgr_contact_attributes (school_id, lower(name));

CREATE TABLE msgr_contact_attribute_values (
    school_id       bigint NOT NULL,
    attribute_id    bigint NOT NULL,
    contact_id      bigint NOT NULL,
    value           text NOT NULL CHECK (length(value) <= 1000),
    PRIMARY KEY (school_id, attribute_id, contact_id),
    FOREIGN KEY (school_id, attribute_id)
        REFERENCES msgr_contact_attributes (school_id, attribute_id)
        ON DELETE CASCADE,
    FOREIGN KEY (school_id, contact_id)
        REFERENCES msgr_contacts (school_id, contact_id)
);

-- The API's JSON of each record, in one place for lists and single reads.
-- A contact's fields are its local edits over the MIS values; "overridden"
-- names the edited fields and "mis_values" keeps what the MIS says.

CREATE FUNCTION msgr_student_json(s msgr_students) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', s.student_id, 'mis_id', s.mis_id,
        'first_name', s.first_name, 'last_name', s.last_name,
        'reg_group', s.reg_group, 'year', s.year, 'status', s.status,
        'leaving_date', s.leaving_date)
$$;

CREATE FUNCTION msgr_contact_json(c msgr_contacts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(c)
               - 'school_id' - 'contact_id' - 'overrides' - 'created_at'
               - 'updated_at' - 'retired_at'
           || c.overrides
           || jsonb_build_object(
               'id', c.contact_id,
               'overridden', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]')
                                FROM jsonb_object_keys(c.overrides) AS k),
               'mis_values', (SELECT coalesce(jsonb_object_agg(k,
                                                  to_jsonb(c) -> k), '{}')
                                FROM jsonb_object_keys(c.overrides) AS k),
               'students', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                   'id', s.student_id,
                                   'first_name', s.first_name,
                                   'last_name', s.last_name,
                                   'reg_group', s.reg_group,
                                   'relationship', l.relationship,
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

CREATE FUNCTION msgr_staff_json(t msgr_staff) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', t.staff_id, 'mis_id', t.mis_id, 'title', t.title,
        'first_name', t.first_name, 'last_name', t.last_name,
        'work_phone', t.work_phone, 'mobile_phone', t.mobile_phone,
        'email', t.email, 'phone_problems', t.phone_problems)
$$;

CREATE FUNCTION msgr_group_json(g msgr_groups) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', g.group_id, 'mis_id', g.mis_id, 'name', g.name,
        'type', g.type,
        'students', (SELECT count(*) FROM msgr_group_students m
                      WHERE m.school_id = g.school_id
                        AND m.group_id = g.group_id
                        AND m.retired_at IS NULL),
        'staff', (SELECT count(*) FROM msgr_group_staff m
                   WHERE m.school_id = g.school_id
                     AND m.group_id = g.group_id
                     AND NOT m.teacher AND m.retired_at IS NULL),
        'teachers', (SELECT count(*) FROM msgr_group_staff m
                      WHERE m.school_id = g.school_id
                        AND m.group_id = g.group_id
                        AND m.teacher AND m.retired_at IS NULL))
$$;

-- How many live Xpressions app devices a contact has: what makes it
-- reachable by push.  Parents' devices arrive with the app credentials;
-- until then nobody has one.
CREATE FUNCTION msgr_contact_devices(p_school bigint, p_contact bigint)
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT 0
$$;
