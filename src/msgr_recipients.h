/*
 * msgr recipient resolution: pure C, shared by the module (GET
 * /v1/recipients, and sending messages) and unit tests.
 *
 * Given the raw records of a send (the selected groups and students, the
 * students with their contact links, the contacts and the staff, as one
 * JSON document built by SQL), the school's settings and today's date, it
 * decides who receives the message and on which channels, and says why
 * everyone else does not.  The rules are in docs/recipients.md.
 */

#ifndef _MSGR_RECIPIENTS_H_INCLUDED_
#define _MSGR_RECIPIENTS_H_INCLUDED_


#include <jansson.h>


typedef enum {
    MSGR_SEND_PRIMARY_CONTACT,   /* "primary_contact" */
    MSGR_SEND_ALL_CONTACTS,      /* "all_contacts" */
    MSGR_SEND_STAFF              /* "staff" */
} msgr_send_to_e;


/* 0 and *out set when s names a send_to, -1 otherwise (s may be NULL) */
int msgr_send_to_parse(const char *s, msgr_send_to_e *out);

/* the name of a send_to, as msgr_send_to_parse() reads it; NULL if unknown */
const char *msgr_send_to_name(msgr_send_to_e send_to);


typedef struct {
    /* contacts tab */
    unsigned   next_available_if_no_primary:1;
    unsigned   show_registration_in_names:1;
    /* mis tab */
    unsigned   teachers_in_class_groups:1;
    unsigned   guest_students:1;
    unsigned   pre_admissions:1;
    unsigned   leavers_included:1;
    int        leavers_persistence_days;
    /* sending tab: voice_calling all_numbers (else first_number) */
    unsigned   voice_all_numbers:1;
    /*
     * Set by the caller, never from the settings: staff details are shown
     * masked (msgr_staff_mask()), as contacts.hide_staff_contact_details
     * asks for a key that is not admin's.  The result is then for display
     * only: its staff channels cannot be sent to.
     */
    unsigned   mask_staff_details:1;
} msgr_recipient_rules_t;


/*
 * Fills rules from a resolved settings object {"sending":{...},
 * "contacts":{...},"mis":{...}}, as msgr_settings_resolve() and GET
 * /v1/settings give it.  A field missing or of the wrong type (or settings
 * NULL) takes its default from the settings table.
 */
void msgr_recipient_rules_from_settings(json_t *settings,
    msgr_recipient_rules_t *rules);

/*
 * "Amy Jones", or with with_reg and a non-empty reg_group "Amy Jones (7B)".
 * NULL or empty first or last names are left out.  malloc'd (the caller
 * frees it); NULL on out of memory.
 */
char *msgr_student_display_name(const char *first, const char *last,
    const char *reg_group, int with_reg);

/*
 * "Mrs Jane Jones": the non-empty parts joined by spaces, of any length.
 * malloc'd (the caller frees it); NULL on out of memory.
 */
char *msgr_person_display_name(const char *title, const char *first,
    const char *last);

/*
 * A staff member's detail as contacts.hide_staff_contact_details shows it:
 * an email keeps its first character and its domain ("t***@school.example"),
 * anything else its last three characters ("**********456").  Characters
 * are UTF-8 characters, never cut.  malloc'd; NULL on out of memory.
 */
char *msgr_mask_detail(const char *s);

/*
 * Masks a staff record in place, the one rule for every route that shows
 * staff: work_phone, mobile_phone, email and the texts of phone_problems,
 * and sets "masked": true.  0, or -1 on out of memory (rec is then left
 * with no detail at all rather than a clear one).
 */
int msgr_staff_mask(json_t *rec);

/*
 * Masks a staff entry of msgr_recipients_resolve()'s result in place (its
 * channels, and its deliveries' addresses once routed) and sets "masked":
 * true; 0, or -1 on out of memory.
 */
int msgr_recipients_mask_entry(json_t *e);

/*
 * data: the raw records of a send (docs/recipients.md); today: the school's
 * date, "YYYY-MM-DD".
 *
 * Returns a new result object {"recipients":[...],"unreachable":[...],
 * "excluded":[...],"counts":{...}}, or NULL with *why set to a static
 * message (when why is not NULL) on out of memory or malformed data.
 * data is not modified.
 */
json_t *msgr_recipients_resolve(json_t *data, msgr_send_to_e send_to,
    const msgr_recipient_rules_t *rules, const char *today,
    const char **why);


#endif /* _MSGR_RECIPIENTS_H_INCLUDED_ */
