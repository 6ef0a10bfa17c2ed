/*
 * msgr phone numbers: normalisation to E.164 ("+447700900123"), pure C,
 * shared by the module (MIS sync), msgrctl and unit tests.
 *
 * The rules, and the table of countries they use, are described at the top
 * of msgr_phone.c.
 */

#ifndef _MSGR_PHONE_H_INCLUDED_
#define _MSGR_PHONE_H_INCLUDED_


#include <stddef.h>


/* "+" and at most 15 digits, and the NUL: the smallest `size` that fits */
#define MSGR_PHONE_E164_SIZE  17


/*
 * Normalises `in`, written as a number of `country` (ISO 3166 alpha-2,
 * upper case, e.g. "GB") or in international form, to E.164.
 *
 * 0: the number is in out ("+442079460000").  -1: it is not a valid
 * number; *why (when why is not NULL) is a short static reason such as
 * "too short", "has an extension" or "unknown country", and out is "".
 */
int msgr_phone_e164(const char *in, const char *country, char *out,
    size_t size, const char **why);

/* 1 when country ("GB", "IE", ...) is in the table, 0 otherwise */
int msgr_phone_country_known(const char *country);

/* the i-th country of the table ("GB"), or NULL past its end */
const char *msgr_phone_country(size_t i);


#endif /* _MSGR_PHONE_H_INCLUDED_ */
