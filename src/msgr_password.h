/*
 * msgr: the password policy of the Security tab (pure C, no nginx types):
 * the strength levels of security.password_strength and how many earlier
 * passwords security.password_history keeps.  docs/security.md gives the
 * rules; every refusal names the rule that failed.
 */

#ifndef _MSGR_PASSWORD_H_INCLUDED_
#define _MSGR_PASSWORD_H_INCLUDED_


#include <stddef.h>


typedef enum {
    MSGR_PASSWORD_ANY = 0,
    MSGR_PASSWORD_MEDIUM,
    MSGR_PASSWORD_STRONG,
    MSGR_PASSWORD_VERY_STRONG
} msgr_password_strength_e;


/* the longest password taken, in characters */
#define MSGR_PASSWORD_MAX_CHARS     128

/* very_strong: the least entropy zxcvbn may estimate, in bits */
#define MSGR_PASSWORD_MIN_ENTROPY   60

/* a password older than this must be changed (enforce_password_change) */
#define MSGR_PASSWORD_MAX_AGE_DAYS  30


/* a password_strength value ("medium"); -1 when it is none */
int msgr_password_strength(const char *name);

/*
 * How many passwords a new one must differ from under a password_history
 * value: 1 for "previous" (the current one), 5 for "last_5" (the current
 * one and the four before it); 1 for anything else.
 */
int msgr_password_history_depth(const char *name);


/* called once per rule the password breaks, with the rule's message */
typedef void (*msgr_password_report_pt)(void *data, const char *message);

/*
 * Checks a password (valid UTF-8, len bytes) against a strength level.
 * name and email (either may be NULL) are the user's: at very_strong they
 * and their parts count as dictionary words.  Reports each broken rule and
 * returns how many there were: 0 when the password is good, -1 when out of
 * memory.
 */
int msgr_password_check(const char *pw, size_t len, int strength,
    const char *name, const char *email, msgr_password_report_pt report,
    void *data);


#endif /* _MSGR_PASSWORD_H_INCLUDED_ */
