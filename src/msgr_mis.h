/*
 * msgr MIS sync: validation and normalisation of the snapshot a school's
 * MIS sends to POST /v1/mis/sync.  Pure C, shared by the module and unit
 * tests.
 *
 * One declarative table per kind of record (students, their contact links,
 * contacts, staff, groups, and the snapshot itself) in msgr_mis.c names
 * every field with its type, whether it is required, its bounds and its
 * default; docs/mis-sync.md describes the same format for integrators.
 */

#ifndef _MSGR_MIS_H_INCLUDED_
#define _MSGR_MIS_H_INCLUDED_


#include <jansson.h>


#define MSGR_MIS_OK        0
#define MSGR_MIS_INVALID   1   /* HTTP 422 */
#define MSGR_MIS_ERROR    -1   /* out of memory */


/*
 * Validates snapshot (which is not modified) and normalises it.
 *
 * MSGR_MIS_OK: *normalised is a new object with every key present and
 * defaults filled (see docs/mis-sync.md), *warnings a new array, possibly
 * empty, of {"field","message"} for the phone numbers that were dropped;
 * *errors is NULL.
 *
 * MSGR_MIS_INVALID: *errors is a new array of {"field","message"} naming
 * every bad field of every record, as "students[S1].status",
 * "students[3].mis_id" (a record without a usable mis_id is named by its
 * position, from 0), "students[S1].contacts[C9].mis_id",
 * "groups[G7B].students[S9]"; *normalised and *warnings are NULL.
 *
 * MSGR_MIS_ERROR: out of memory; every output is NULL.
 *
 * Any output pointer may be NULL when the caller does not want it.
 */
int msgr_mis_normalise(json_t *snapshot, json_t **normalised,
    json_t **warnings, json_t **errors);


#endif /* _MSGR_MIS_H_INCLUDED_ */
