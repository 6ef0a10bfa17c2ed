/*
 * Unit tests of src/msgr_mis.c: validation and normalisation of an MIS
 * sync snapshot.  Every rule of docs/mis-sync.md: defaults and trimming,
 * each kind of error named by its field path with its exact message,
 * several errors at once, phone numbers that become warnings, the default
 * country, leavers, dangling references, duplicates, unknown keys, list
 * limits, out of memory; and the full example of docs/mis-sync.md is
 * valid.  Prints TAP.
 *
 * JSON in this file is written with ' for " (see msgr_test_json()); a
 * real apostrophe is \u0027.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_mis.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  112


/* minimal valid records, left open so a case can add or override keys */

#define STU  "{'mis_id':'S1','first_name':'Amy','last_name':'Jones'," \
             "'status':'on_roll'"
#define STU2 "{'mis_id':'S2','first_name':'Ben','last_name':'Jones'," \
             "'status':'on_roll'"
#define CON  "{'mis_id':'C1','first_name':'Jane','last_name':'Jones'"
#define CON2 "{'mis_id':'C2','first_name':'John','last_name':'Jones'"
#define STF  "{'mis_id':'T1','first_name':'Tom','last_name':'Smith'"
#define GRP  "{'mis_id':'G1','name':'7B','type':'class'"

/* one error {"field","message"} */
#define E(field, message)  "{'field':'" field "','message':'" message "'}"

#define C10   "0123456789"
#define C50   C10 C10 C10 C10 C10
#define C64   C50 C10 "0123"
#define C100  C50 C50
#define U8    "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
#define U64   U8 U8 U8 U8 U8 U8 U8 U8

#define STATUSES  "must be one of: on_roll, guest, pre_admission, leaver"
#define TYPES     "must be one of: class, registration, year, custom"
#define COUNTRIES "must be one of: GB, IE, US, CA, FR, ES, DE, PL, IN, AU"
#define NO_DATE   "must be a date written YYYY-MM-DD, or null"
#define BAD_DATE  "is not a calendar date"
#define EMAIL     "must be an email address such as jane@example.org " \
                  "(one @, a domain with a dot, no spaces), or null"
#define LANGUAGE  "must be a language tag of 2 to 8 letters and -, such " \
                  "as en or pt-BR"
#define NO_CONTACT  "no contact with this mis_id in contacts"
#define NO_STUDENT  "no student with this mis_id in students"
#define NO_STAFF    "no staff member with this mis_id in staff"


typedef struct {
    int             rc;
    json_t         *out;
    json_t         *warnings;
    json_t         *errors;
} msgr_test_result_t;


typedef struct {
    const char     *desc;
    const char     *snapshot;
    const char     *errors;     /* "[]": valid */
} msgr_test_case_t;


static const msgr_test_case_t  msgr_test_cases[] = {

    /* the snapshot */

    { "a list is not a snapshot", "[]",
      "[" E("", "must be an object") "]" },

    { "null is not a snapshot", "null",
      "[" E("", "must be an object") "]" },

    { "an unknown top-level key is an error",
      "{'school':'x','students':[]}",
      "[" E("school", "unknown field") "]" },

    { "a list that is not a list is an error; nothing refers into it",
      "{'students':{'S1':{}},'groups':[" GRP ",'students':['S1']}]}",
      "[" E("students", "must be a list") "]" },

    { "every list must be a list",
      "{'contacts':'C1','staff':1,'groups':true}",
      "[" E("contacts", "must be a list") ","
          E("staff", "must be a list") ","
          E("groups", "must be a list") "]" },

    { "null lists are empty lists",
      "{'default_country':null,'students':null,'contacts':null,"
      "'staff':null,'groups':null}",
      "[]" },

    { "records must be objects, named by position",
      "{'students':[1,'S1',[]," STU "}]}",
      "[" E("students[0]", "must be an object") ","
          E("students[1]", "must be an object") ","
          E("students[2]", "must be an object") "]" },

    /* default_country */

    { "default_country must be a known country",
      "{'default_country':'XX'}",
      "[" E("default_country", COUNTRIES) "]" },

    { "default_country is upper case",
      "{'default_country':'gb'}",
      "[" E("default_country", COUNTRIES) "]" },

    { "default_country must be a string",
      "{'default_country':44}",
      "[" E("default_country", "must be a string") "]" },

    { "default_country may be IE", "{'default_country':'IE'}", "[]" },

    /* mis_id */

    { "mis_id is required",
      "{'students':[{'first_name':'Amy','last_name':'Jones',"
      "'status':'on_roll'}]}",
      "[" E("students[0].mis_id", "is required") "]" },

    { "mis_id null is missing",
      "{'contacts':[" CON ",'mis_id':null}]}",
      "[" E("contacts[0].mis_id", "is required") "]" },

    { "mis_id must not be empty",
      "{'staff':[" STF ",'mis_id':''}]}",
      "[" E("staff[0].mis_id", "must not be empty") "]" },

    { "mis_id must be a string",
      "{'groups':[" GRP ",'mis_id':7}]}",
      "[" E("groups[0].mis_id", "must be a string") "]" },

    { "mis_id of 64 characters is allowed",
      "{'students':[" STU ",'mis_id':'" C64 "'}]}", "[]" },

    { "mis_id of 65 characters is too long",
      "{'students':[" STU ",'mis_id':'" C64 "x'}]}",
      "[" E("students[0].mis_id", "must be at most 64 characters") "]" },

    { "mis_id length counts characters, not bytes",
      "{'students':[" STU ",'mis_id':'" U64 "'}," STU2 ",'mis_id':'"
      U64 "x'}]}",
      "[" E("students[1].mis_id", "must be at most 64 characters") "]" },

    { "mis_id must not start or end with white space",
      "{'students':[" STU ",'mis_id':' S1'}," STU2 ",'mis_id':'S2 '},"
      STU ",'mis_id':'S3\\u00a0'}]}",
      "[" E("students[0].mis_id", "must not start or end with white space")
      "," E("students[1].mis_id", "must not start or end with white space")
      "," E("students[2].mis_id", "must not start or end with white space")
      "]" },

    { "mis_id must not contain control characters",
      "{'students':[" STU ",'mis_id':'S\\u0001'}," STU2 ",'mis_id':'S2\\t'},"
      STU ",'mis_id':'S\\u0000'}]}",
      "[" E("students[0].mis_id", "must not contain control characters")
      "," E("students[1].mis_id", "must not contain control characters")
      "," E("students[2].mis_id", "must not contain control characters")
      "]" },

    { "mis_id with inner spaces and punctuation is fine",
      "{'students':[" STU ",'mis_id':'S 1/2024-a.b'}]}", "[]" },

    { "mis_ids are unique within their list; the second is named by "
      "position",
      "{'students':[" STU "}," STU2 "}," STU ",'status':'x'}]}",
      "[" E("students[2].mis_id", "must be unique within students: "
            "students[S1] has the same mis_id") ","
          E("students[2].status", STATUSES) "]" },

    { "duplicate contacts, staff and groups",
      "{'contacts':[" CON "}," CON "}],'staff':[" STF "}," STF "}],"
      "'groups':[" GRP "}," GRP "}]}",
      "[" E("contacts[1].mis_id", "must be unique within contacts: "
            "contacts[C1] has the same mis_id") ","
          E("staff[1].mis_id", "must be unique within staff: "
            "staff[T1] has the same mis_id") ","
          E("groups[1].mis_id", "must be unique within groups: "
            "groups[G1] has the same mis_id") "]" },

    { "students, contacts, staff and groups are separate namespaces",
      "{'students':[" STU ",'mis_id':'X'}],'contacts':[" CON
      ",'mis_id':'X'}],'staff':[" STF ",'mis_id':'X'}],'groups':[" GRP
      ",'mis_id':'X'}]}",
      "[]" },

    { "a record without a usable mis_id is named by position",
      "{'students':[" STU "}," STU ",'mis_id':'','status':'x',"
      "'year':7}]}",
      "[" E("students[1].mis_id", "must not be empty") ","
          E("students[1].year", "must be a string") ","
          E("students[1].status", STATUSES) "]" },

    /* names */

    { "first_name is required",
      "{'students':[{'mis_id':'S1','last_name':'Jones',"
      "'status':'on_roll'}]}",
      "[" E("students[S1].first_name", "is required") "]" },

    { "last_name null is missing",
      "{'students':[" STU ",'last_name':null}]}",
      "[" E("students[S1].last_name", "is required") "]" },

    { "first_name must not be empty or blank",
      "{'students':[" STU ",'first_name':''}," STU2 ",'first_name':"
      "' \\t '}]}",
      "[" E("students[S1].first_name", "must not be empty") ","
          E("students[S2].first_name", "must not be empty") "]" },

    { "a name of 100 characters is allowed",
      "{'students':[" STU ",'first_name':'" C100 "'}]}", "[]" },

    { "a name of 101 characters is too long",
      "{'students':[" STU ",'last_name':'" C100 "x'}]}",
      "[" E("students[S1].last_name", "must be at most 100 characters")
      "]" },

    { "names are measured after trimming",
      "{'students':[" STU ",'last_name':'  " C100 "  '}]}", "[]" },

    { "names must be strings",
      "{'students':[" STU ",'first_name':5,'last_name':['Jones']}]}",
      "[" E("students[S1].first_name", "must be a string") ","
          E("students[S1].last_name", "must be a string") "]" },

    { "names must not contain control or NUL characters",
      "{'students':[" STU ",'first_name':'A\\nB','last_name':'A\\u0000B'}"
      "]}",
      "[" E("students[S1].first_name", "must not contain control "
            "characters") ","
          E("students[S1].last_name", "must not contain NUL characters")
      "]" },

    { "contacts and staff need both names",
      "{'contacts':[{'mis_id':'C1','first_name':'Jane'}],"
      "'staff':[{'mis_id':'T1','last_name':'Smith'}]}",
      "[" E("contacts[C1].last_name", "is required") ","
          E("staff[T1].first_name", "is required") "]" },

    { "group name is required, at most 100 characters",
      "{'groups':[{'mis_id':'G1','type':'class'}," GRP ",'mis_id':'G2',"
      "'name':'" C100 "x'}]}",
      "[" E("groups[G1].name", "is required") ","
          E("groups[G2].name", "must be at most 100 characters") "]" },

    /* optional strings */

    { "title is at most 50 characters",
      "{'contacts':[" CON ",'title':'" C50 "x'}],"
      "'staff':[" STF ",'title':'" C50 "x'}]}",
      "[" E("contacts[C1].title", "must be at most 50 characters") ","
          E("staff[T1].title", "must be at most 50 characters") "]" },

    { "title of 50 characters is allowed",
      "{'contacts':[" CON ",'title':'" C50 "'}]}", "[]" },

    { "reg_group and year are at most 20 characters",
      "{'students':[" STU ",'reg_group':'" C10 C10 "x','year':'" C10 C10
      "x'}]}",
      "[" E("students[S1].reg_group", "must be at most 20 characters") ","
          E("students[S1].year", "must be at most 20 characters") "]" },

    { "optional strings must be strings",
      "{'students':[" STU ",'year':7,'reg_group':true}],"
      "'contacts':[" CON ",'title':1}]}",
      "[" E("students[S1].reg_group", "must be a string") ","
          E("students[S1].year", "must be a string") ","
          E("contacts[C1].title", "must be a string") "]" },

    /* status and leaving_date */

    { "status is required",
      "{'students':[{'mis_id':'S1','first_name':'Amy',"
      "'last_name':'Jones'}]}",
      "[" E("students[S1].status", "is required") "]" },

    { "status must be one of the four",
      "{'students':[" STU ",'status':'Leaver'}," STU2 ",'status':1}]}",
      "[" E("students[S1].status", STATUSES) ","
          E("students[S2].status", "must be a string") "]" },

    { "guest, pre_admission and leaver with a date are valid",
      "{'students':[" STU ",'status':'guest'}," STU2 ",'status':"
      "'pre_admission'}," STU ",'mis_id':'S3','status':'leaver',"
      "'leaving_date':'2024-07-19'}]}",
      "[]" },

    { "a leaver needs a leaving_date",
      "{'students':[" STU ",'status':'leaver'}," STU2 ",'status':'leaver',"
      "'leaving_date':null}]}",
      "[" E("students[S1].leaving_date", "is required when status is "
            "leaver") ","
          E("students[S2].leaving_date", "is required when status is "
            "leaver") "]" },

    { "a leaver with a bad date has one error, not two",
      "{'students':[" STU ",'status':'leaver','leaving_date':'2024-02-30'}"
      "]}",
      "[" E("students[S1].leaving_date", BAD_DATE) "]" },

    { "a student on roll may have a leaving date",
      "{'students':[" STU ",'leaving_date':'2025-07-18'}]}", "[]" },

    { "leaving_date must be a calendar date",
      "{'students':[" STU ",'leaving_date':'2024-13-01'}," STU2
      ",'leaving_date':'2023-02-29'}," STU ",'mis_id':'S3',"
      "'leaving_date':'1900-02-29'}," STU ",'mis_id':'S4',"
      "'leaving_date':'2024-04-31'}," STU ",'mis_id':'S5',"
      "'leaving_date':'0000-01-01'}," STU ",'mis_id':'S6',"
      "'leaving_date':'2024-00-10'}," STU ",'mis_id':'S7',"
      "'leaving_date':'2024-01-00'}]}",
      "[" E("students[S1].leaving_date", BAD_DATE) ","
          E("students[S2].leaving_date", BAD_DATE) ","
          E("students[S3].leaving_date", BAD_DATE) ","
          E("students[S4].leaving_date", BAD_DATE) ","
          E("students[S5].leaving_date", BAD_DATE) ","
          E("students[S6].leaving_date", BAD_DATE) ","
          E("students[S7].leaving_date", BAD_DATE) "]" },

    { "leap days of leap years are dates",
      "{'students':[" STU ",'leaving_date':'2024-02-29'}," STU2
      ",'leaving_date':'2000-02-29'}]}",
      "[]" },

    { "leaving_date must be written YYYY-MM-DD",
      "{'students':[" STU ",'leaving_date':'2024-1-01'}," STU2
      ",'leaving_date':'19/07/2024'}," STU ",'mis_id':'S3',"
      "'leaving_date':'2024-07-19T00:00:00Z'}," STU ",'mis_id':'S4',"
      "'leaving_date':20240719}]}",
      "[" E("students[S1].leaving_date", NO_DATE) ","
          E("students[S2].leaving_date", NO_DATE) ","
          E("students[S3].leaving_date", NO_DATE) ","
          E("students[S4].leaving_date", "must be a string") "]" },

    { "an empty leaving_date is none, so a leaver needs a real one",
      "{'students':[" STU ",'leaving_date':''}," STU2 ",'status':'leaver',"
      "'leaving_date':' '}]}",
      "[" E("students[S2].leaving_date", "is required when status is "
            "leaver") "]" },

    /* a student's contact links */

    { "contacts of a student must be a list of objects",
      "{'students':[" STU ",'contacts':{}}," STU2 ",'contacts':[1]}]}",
      "[" E("students[S1].contacts", "must be a list") ","
          E("students[S2].contacts[0]", "must be an object") "]" },

    { "a link must name a contact in contacts",
      "{'students':[" STU ",'contacts':[{'mis_id':'C9','priority':1}]}],"
      "'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[C9].mis_id", NO_CONTACT) "]" },

    { "a link with no contacts at all dangles",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1}]}]}",
      "[" E("students[S1].contacts[C1].mis_id", NO_CONTACT) "]" },

    { "a link's mis_id is required and named by position",
      "{'students':[" STU ",'contacts':[{'priority':1},{'mis_id':3,"
      "'priority':2}]}],'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[0].mis_id", "is required") ","
          E("students[S1].contacts[1].mis_id", "must be a string") "]" },

    { "a link's priority is required",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1'}]}],"
      "'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[C1].priority", "is required") "]" },

    { "a link's priority is an integer from 1 to 99",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':0},"
      "{'mis_id':'C2','priority':100}]}," STU2 ",'contacts':["
      "{'mis_id':'C1','priority':'1'},{'mis_id':'C2','priority':1.0}]}],"
      "'contacts':[" CON "}," CON2 "}]}",
      "[" E("students[S1].contacts[C1].priority", "must be an integer from "
            "1 to 99") ","
          E("students[S1].contacts[C2].priority", "must be an integer from "
            "1 to 99") ","
          E("students[S2].contacts[C1].priority", "must be an integer") ","
          E("students[S2].contacts[C2].priority", "must be an integer")
      "]" },

    { "priorities 1 and 99 are allowed",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':99},"
      "{'mis_id':'C2','priority':1}]}],'contacts':[" CON "}," CON2 "}]}",
      "[]" },

    { "priorities are unique within a student",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1},"
      "{'mis_id':'C2','priority':1}]}],'contacts':[" CON "}," CON2 "}]}",
      "[" E("students[S1].contacts[C2].priority", "must be unique within "
            "the student: contacts[C1] has the same priority") "]" },

    { "siblings may share a contact and a priority",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1}]},"
      STU2 ",'contacts':[{'mis_id':'C1','priority':1}]}],"
      "'contacts':[" CON "}]}",
      "[]" },

    { "the same contact linked twice to a student is an error",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1},"
      "{'mis_id':'C1','priority':2}]}],'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[1].mis_id", "must be unique within "
            "the student: contacts[C1] has the same mis_id") "]" },

    { "correspondence must be a boolean",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1,"
      "'correspondence':'yes'},{'mis_id':'C2','priority':2,"
      "'correspondence':1}]}],'contacts':[" CON "}," CON2 "}]}",
      "[" E("students[S1].contacts[C1].correspondence",
            "must be a boolean") ","
          E("students[S1].contacts[C2].correspondence",
            "must be a boolean") "]" },

    { "relationship is at most 50 characters",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1,"
      "'relationship':'" C50 "x'}]}],'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[C1].relationship",
            "must be at most 50 characters") "]" },

    { "an unknown key in a link is an error",
      "{'students':[" STU ",'contacts':[{'mis_id':'C1','priority':1,"
      "'role':'parent'}]}],'contacts':[" CON "}]}",
      "[" E("students[S1].contacts[C1].role", "unknown field") "]" },

    /* contacts and staff */

    { "phones must be strings or null",
      "{'contacts':[" CON ",'home_phone':2079460000,'work_phone':null,"
      "'mobile_phone':['07700 900123']}],'staff':[" STF ",'work_phone':"
      "false}]}",
      "[" E("contacts[C1].home_phone", "must be a string") ","
          E("contacts[C1].mobile_phone", "must be a string") ","
          E("staff[T1].work_phone", "must be a string") "]" },

    { "a phone must not contain NUL characters",
      "{'contacts':[" CON ",'home_phone':'020\\u00007946 0000'}]}",
      "[" E("contacts[C1].home_phone", "must not contain NUL characters")
      "]" },

    { "emails that are not plausible are errors",
      "{'contacts':[" CON ",'email':'jane'}," CON ",'mis_id':'C2',"
      "'email':'jane@example'}," CON ",'mis_id':'C3',"
      "'email':'jane@@example.org'}," CON ",'mis_id':'C4',"
      "'email':'ja ne@example.org'}," CON ",'mis_id':'C5',"
      "'email':'@example.org'}," CON ",'mis_id':'C6',"
      "'email':'jane@.example.org'}," CON ",'mis_id':'C7',"
      "'email':'jane@example.org.'}," CON ",'mis_id':'C8',"
      "'email':'jane@example..org'}," CON ",'mis_id':'C9',"
      "'email':'jane@ex@ample.org'}]}",
      "[" E("contacts[C1].email", EMAIL) "," E("contacts[C2].email", EMAIL)
      "," E("contacts[C3].email", EMAIL) "," E("contacts[C4].email", EMAIL)
      "," E("contacts[C5].email", EMAIL) "," E("contacts[C6].email", EMAIL)
      "," E("contacts[C7].email", EMAIL) "," E("contacts[C8].email", EMAIL)
      "," E("contacts[C9].email", EMAIL) "]" },

    { "an email's local part is at most 64 characters",
      "{'staff':[" STF ",'email':'" C64 "@school.example'}," STF ",'mis_id':"
      "'T2','email':'" C64 "x@school.example'}]}",
      "[" E("staff[T2].email", EMAIL) "]" },

    { "an email is at most 254 characters",
      "{'staff':[" STF ",'email':'a@" C100 "." C100 "." C50 "'}," STF
      ",'mis_id':'T2','email':'a@" C100 "." C100 "." C50 "x'}]}",
      "[" E("staff[T2].email", EMAIL) "]" },

    { "an email must be a string or null",
      "{'contacts':[" CON ",'email':5}]}",
      "[" E("contacts[C1].email", "must be a string") "]" },

    { "language is 2 to 8 letters and -",
      "{'contacts':[" CON ",'language':'e'}," CON ",'mis_id':'C2',"
      "'language':'english-uk'}," CON ",'mis_id':'C3',"
      "'language':'en_GB'}," CON ",'mis_id':'C4',"
      "'language':'-en'}," CON ",'mis_id':'C5','language':'e1'},"
      CON ",'mis_id':'C6','language':5}]}",
      "[" E("contacts[C1].language", LANGUAGE) ","
          E("contacts[C2].language", LANGUAGE) ","
          E("contacts[C3].language", LANGUAGE) ","
          E("contacts[C4].language", LANGUAGE) ","
          E("contacts[C5].language", LANGUAGE) ","
          E("contacts[C6].language", "must be a string") "]" },

    { "languages such as pl, pt-BR and zh-Hant are fine",
      "{'contacts':[" CON ",'language':'pl'}," CON2 ",'language':'pt-BR'},"
      CON ",'mis_id':'C3','language':'zh-Hant'}]}",
      "[]" },

    { "unknown keys in contacts and staff are errors",
      "{'contacts':[" CON ",'phone_problems':{},'Email':'x'}],"
      "'staff':[" STF ",'home_phone':'020 7946 0000','language':'en'}]}",
      "[" E("contacts[C1].phone_problems", "unknown field") ","
          E("contacts[C1].Email", "unknown field") ","
          E("staff[T1].home_phone", "unknown field") ","
          E("staff[T1].language", "unknown field") "]" },

    { "an unknown key in a student is an error",
      "{'students':[" STU ",'dob':'2012-01-01'}]}",
      "[" E("students[S1].dob", "unknown field") "]" },

    /* groups */

    { "group type is required and one of the four",
      "{'groups':[{'mis_id':'G1','name':'7B'}," GRP ",'mis_id':'G2',"
      "'type':'tutor'}]}",
      "[" E("groups[G1].type", "is required") ","
          E("groups[G2].type", TYPES) "]" },

    { "a group's students must exist",
      "{'students':[" STU "}],'groups':[" GRP ",'students':['S1','S9']}]}",
      "[" E("groups[G1].students[S9]", NO_STUDENT) "]" },

    { "a group's staff and teachers must exist in staff",
      "{'staff':[" STF "}],'groups':[" GRP ",'staff':['T8','T1'],"
      "'teachers':['T1','T9']}]}",
      "[" E("groups[G1].staff[T8]", NO_STAFF) ","
          E("groups[G1].teachers[T9]", NO_STAFF) "]" },

    { "a group's lists must not repeat a mis_id",
      "{'students':[" STU "}," STU2 "}],'staff':[" STF "}],'groups':[" GRP
      ",'students':['S1','S2','S1','S1'],'staff':['T1','T1']}]}",
      "[" E("groups[G1].students[S1]", "is listed more than once") ","
          E("groups[G1].students[S1]", "is listed more than once") ","
          E("groups[G1].staff[T1]", "is listed more than once") "]" },

    { "a group's lists hold mis_id strings",
      "{'students':[" STU "}],'groups':[" GRP ",'students':[1,'',null]}]}",
      "[" E("groups[G1].students[0]", "must be a string") ","
          E("groups[G1].students[1]", NO_STUDENT) ","
          E("groups[G1].students[2]", "must be a string") "]" },

    { "a group's lists must be lists",
      "{'students':[" STU "}],'groups':[" GRP ",'students':'S1',"
      "'staff':{},'teachers':1}]}",
      "[" E("groups[G1].students", "must be a list") ","
          E("groups[G1].staff", "must be a list") ","
          E("groups[G1].teachers", "must be a list") "]" },

    { "teachers are only allowed on class groups",
      "{'staff':[" STF "}],'groups':[" GRP ",'type':'registration',"
      "'teachers':['T1']}," GRP ",'mis_id':'G2','type':'year',"
      "'teachers':['T1']}," GRP ",'mis_id':'G3','type':'custom',"
      "'teachers':['T1']}]}",
      "[" E("groups[G1].teachers", "is allowed only on class groups") ","
          E("groups[G2].teachers", "is allowed only on class groups") ","
          E("groups[G3].teachers", "is allowed only on class groups") "]" },

    { "an empty teachers list is fine on any group; staff too",
      "{'staff':[" STF "}],'groups':[" GRP ",'type':'registration',"
      "'teachers':[],'staff':['T1']}," GRP ",'mis_id':'G2','type':'year',"
      "'teachers':null}," GRP ",'mis_id':'G3','teachers':['T1'],"
      "'staff':['T1']}]}",
      "[]" },

    { "an unknown key in a group is an error",
      "{'groups':[" GRP ",'parents':[]}]}",
      "[" E("groups[G1].parents", "unknown field") "]" },

    /* several errors at once */

    { "every error of every record is reported, in order",
      "{'default_country':'UK','extra':1,"
      "'students':[" STU ",'status':'left','contacts':[{'mis_id':'C9',"
      "'priority':1}]}," STU2 ",'first_name':'','status':'leaver'},"
      "{'mis_id':'S1'}],"
      "'contacts':[" CON ",'email':'jane','language':'en_GB'},"
      "{'mis_id':' C2','first_name':'J'}],"
      "'staff':[" STF ",'title':" "'" C50 "x'}],"
      "'groups':[" GRP ",'students':['S1','S9'],'teachers':['T2']},"
      "{'mis_id':'G2','name':'','type':'year','teachers':['T1']}]}",
      "[" E("default_country", COUNTRIES) ","
          E("students[S1].status", STATUSES) ","
          E("students[S1].contacts[C9].mis_id", NO_CONTACT) ","
          E("students[S2].first_name", "must not be empty") ","
          E("students[S2].leaving_date", "is required when status is "
            "leaver") ","
          E("students[2].mis_id", "must be unique within students: "
            "students[S1] has the same mis_id") ","
          E("students[2].first_name", "is required") ","
          E("students[2].last_name", "is required") ","
          E("students[2].status", "is required") ","
          E("contacts[C1].email", EMAIL) ","
          E("contacts[C1].language", LANGUAGE) ","
          E("contacts[1].mis_id", "must not start or end with white space")
          "," E("contacts[1].last_name", "is required") ","
          E("staff[T1].title", "must be at most 50 characters") ","
          E("groups[G1].students[S9]", NO_STUDENT) ","
          E("groups[G1].teachers[T2]", NO_STAFF) ","
          E("groups[G2].name", "must not be empty") ","
          E("groups[G2].teachers", "is allowed only on class groups") ","
          E("extra", "unknown field") "]" },

    { NULL, NULL, NULL }
};


static int
msgr_test_is(json_t *v, const char *text)
{
    int      eq;
    json_t  *want;

    want = msgr_test_json(text);
    eq = v != NULL && json_equal(v, want);
    json_decref(want);

    return eq;
}


static void
msgr_test_free(msgr_test_result_t *r)
{
    json_decref(r->out);
    json_decref(r->warnings);
    json_decref(r->errors);
    memset(r, 0, sizeof(*r));
}


static void
msgr_test_run(msgr_test_result_t *r, json_t *snapshot)
{
    memset(r, 0, sizeof(*r));

    /* garbage in the outputs: the function must set every one */

    r->out = r->warnings = r->errors = (json_t *) 1;

    r->rc = msgr_mis_normalise(snapshot, &r->out, &r->warnings, &r->errors);

    if (r->rc == MSGR_MIS_ERROR) {
        printf("Bail out! msgr_mis_normalise: out of memory\n");
        exit(255);
    }
}


static void
msgr_test_run_text(msgr_test_result_t *r, const char *text)
{
    json_t  *snapshot;

    snapshot = msgr_test_json(text);
    msgr_test_run(r, snapshot);
    json_decref(snapshot);
}


static int
msgr_test_valid(msgr_test_result_t *r)
{
    int  ok;

    ok = r->rc == MSGR_MIS_OK && json_is_object(r->out)
         && json_is_array(r->warnings) && r->errors == NULL;

    if (!ok) {
        printf("# rc %d\n", r->rc);
        msgr_test_diag("errors", r->errors);
    }

    return ok;
}


static void
msgr_test_case(const msgr_test_case_t *c)
{
    int                  ok;
    json_t              *want;
    msgr_test_result_t   r;

    msgr_test_run_text(&r, c->snapshot);
    want = msgr_test_json(c->errors);

    if (json_array_size(want) == 0) {
        ok = msgr_test_valid(&r);

    } else {
        ok = r.rc == MSGR_MIS_INVALID && r.out == NULL
             && r.warnings == NULL && json_equal(r.errors, want);
    }

    if (!msgr_test_ok(ok, c->desc)) {
        printf("# rc %d\n", r.rc);
        msgr_test_diag("errors", r.errors);
        msgr_test_diag("expected", want);
    }

    json_decref(want);
    msgr_test_free(&r);
}


/* a valid snapshot's output and warnings are exactly these */

static void
msgr_test_output(const char *desc, const char *snapshot, const char *out,
    const char *warnings)
{
    int                  ok;
    msgr_test_result_t   r;

    msgr_test_run_text(&r, snapshot);

    ok = msgr_test_valid(&r) && msgr_test_is(r.out, out)
         && msgr_test_is(r.warnings, warnings);

    if (!msgr_test_ok(ok, desc)) {
        msgr_test_diag("normalised", r.out);
        msgr_test_diag("warnings", r.warnings);
    }

    msgr_test_free(&r);
}


static void
msgr_test_outputs(void)
{
    msgr_test_output(
        "an empty snapshot normalises to every list empty, GB",
        "{}",
        "{'default_country':'GB','students':[],'contacts':[],'staff':[],"
        "'groups':[]}",
        "[]");

    msgr_test_output(
        "a small snapshot normalises exactly: defaults filled, strings "
        "trimmed, phones in E.164, every key present",
        "{'students':[{'mis_id':'S1','first_name':' Amy ',"
        "'last_name':'O\\u0027Neil\\u00a0','status':' on_roll ',"
        "'year':' 7 ','contacts':[{'mis_id':'C1','priority':1},"
        "{'mis_id':'C2','priority':2,'correspondence':false,"
        "'relationship':' Father '}]}],"
        "'contacts':[{'mis_id':'C1','first_name':'Jane',"
        "'last_name':'Jones','title':null,'home_phone':'020 7946 0000',"
        "'work_phone':'','mobile_phone':' 07700 900123 ',"
        "'email':' jane.jones@example.org ','language':' pl '},"
        "{'mis_id':'C2','title':'Mr','first_name':'John',"
        "'last_name':'Jones','email':'','language':''}],"
        "'staff':[{'mis_id':'T1','first_name':'Tom','last_name':'Smith',"
        "'mobile_phone':'+44 (0)7700 900456'}],"
        "'groups':[{'mis_id':'G1','name':' 7B ','type':'registration',"
        "'students':['S1']},{'mis_id':'G2','name':'Maths 7x1',"
        "'type':'class','teachers':['T1'],'staff':null}]}",
        "{'default_country':'GB',"
        "'students':[{'mis_id':'S1','first_name':'Amy',"
        "'last_name':'O\\u0027Neil','reg_group':'','year':'7',"
        "'status':'on_roll','leaving_date':null,"
        "'contacts':[{'mis_id':'C1','relationship':'','priority':1,"
        "'correspondence':true},{'mis_id':'C2','relationship':'Father',"
        "'priority':2,'correspondence':false}]}],"
        "'contacts':[{'mis_id':'C1','title':'','first_name':'Jane',"
        "'last_name':'Jones','home_phone':'+442079460000',"
        "'work_phone':null,'mobile_phone':'+447700900123',"
        "'email':'jane.jones@example.org','language':'pl',"
        "'phone_problems':{}},"
        "{'mis_id':'C2','title':'Mr','first_name':'John',"
        "'last_name':'Jones','home_phone':null,'work_phone':null,"
        "'mobile_phone':null,'email':null,'language':'en',"
        "'phone_problems':{}}],"
        "'staff':[{'mis_id':'T1','title':'','first_name':'Tom',"
        "'last_name':'Smith','work_phone':null,"
        "'mobile_phone':'+447700900456','email':null,"
        "'phone_problems':{}}],"
        "'groups':[{'mis_id':'G1','name':'7B','type':'registration',"
        "'students':['S1'],'staff':[],'teachers':[]},"
        "{'mis_id':'G2','name':'Maths 7x1','type':'class','students':[],"
        "'staff':[],'teachers':['T1']}]}",
        "[]");

    msgr_test_output(
        "a leaver keeps the leaving_date; records keep their order",
        "{'students':[" STU2 "}," STU ",'status':'leaver',"
        "'leaving_date':' 2024-07-19 '}]}",
        "{'default_country':'GB','students':["
        "{'mis_id':'S2','first_name':'Ben','last_name':'Jones',"
        "'reg_group':'','year':'','status':'on_roll','leaving_date':null,"
        "'contacts':[]},"
        "{'mis_id':'S1','first_name':'Amy','last_name':'Jones',"
        "'reg_group':'','year':'','status':'leaver',"
        "'leaving_date':'2024-07-19','contacts':[]}],"
        "'contacts':[],'staff':[],'groups':[]}",
        "[]");

    /* phones that do not normalise: warnings, not errors */

    msgr_test_output(
        "a phone that does not normalise is null, kept in phone_problems, "
        "and a warning",
        "{'contacts':[" CON ",'home_phone':'020 7946 0000',"
        "'mobile_phone':'07700 12'}]}",
        "{'default_country':'GB','students':[],'contacts':["
        "{'mis_id':'C1','title':'','first_name':'Jane','last_name':'Jones',"
        "'home_phone':'+442079460000','work_phone':null,"
        "'mobile_phone':null,'email':null,'language':'en',"
        "'phone_problems':{'mobile_phone':'07700 12'}}],"
        "'staff':[],'groups':[]}",
        "[{'field':'contacts[C1].mobile_phone','message':'\\\"07700 12\\\" "
        "is not a valid GB phone number (too short); it was not "
        "imported'}]");

    msgr_test_output(
        "every bad phone of contacts and staff is a warning, in order; "
        "the raw text is kept as it was",
        "{'contacts':[" CON ",'home_phone':' 7946 0000 ',"
        "'work_phone':'020 7946 0000 ext 12','mobile_phone':'mobile'},"
        CON2 ",'mobile_phone':'07700 900123'}],"
        "'staff':[" STF ",'work_phone':'+44 20','mobile_phone':"
        "'07700 900123 / 07700 900124'}]}",
        "{'default_country':'GB','students':[],'contacts':["
        "{'mis_id':'C1','title':'','first_name':'Jane','last_name':'Jones',"
        "'home_phone':null,'work_phone':null,'mobile_phone':null,"
        "'email':null,'language':'en','phone_problems':{"
        "'home_phone':' 7946 0000 ','work_phone':'020 7946 0000 ext 12',"
        "'mobile_phone':'mobile'}},"
        "{'mis_id':'C2','title':'','first_name':'John','last_name':'Jones',"
        "'home_phone':null,'work_phone':null,"
        "'mobile_phone':'+447700900123','email':null,'language':'en',"
        "'phone_problems':{}}],"
        "'staff':[{'mis_id':'T1','title':'','first_name':'Tom',"
        "'last_name':'Smith','work_phone':null,'mobile_phone':null,"
        "'email':null,'phone_problems':{'work_phone':'+44 20',"
        "'mobile_phone':'07700 900123 / 07700 900124'}}],'groups':[]}",
        "[{'field':'contacts[C1].home_phone','message':'\\\" 7946 0000 \\\" "
        "is not a valid GB phone number (no leading 0); it was not "
        "imported'},"
        "{'field':'contacts[C1].work_phone','message':'\\\"020 7946 0000 "
        "ext 12\\\" is not a valid GB phone number (has an extension); it "
        "was not imported'},"
        "{'field':'contacts[C1].mobile_phone','message':'\\\"mobile\\\" is "
        "not a valid GB phone number (contains letters); it was not "
        "imported'},"
        "{'field':'staff[T1].work_phone','message':'\\\"+44 20\\\" is not a "
        "valid GB phone number (too short); it was not imported'},"
        "{'field':'staff[T1].mobile_phone','message':'\\\"07700 900123 / "
        "07700 900124\\\" is not a valid GB phone number (too long); it "
        "was not imported'}]");

    msgr_test_output(
        "IE as default_country: Irish national numbers, GB numbers only "
        "in international form",
        "{'default_country':'IE','contacts':[" CON ",'home_phone':"
        "'01 234 5678','work_phone':'+44 20 7946 0000','mobile_phone':"
        "'020 7946 0000'}]}",
        "{'default_country':'IE','students':[],'contacts':["
        "{'mis_id':'C1','title':'','first_name':'Jane','last_name':'Jones',"
        "'home_phone':'+35312345678','work_phone':'+442079460000',"
        "'mobile_phone':null,'email':null,'language':'en',"
        "'phone_problems':{'mobile_phone':'020 7946 0000'}}],"
        "'staff':[],'groups':[]}",
        "[{'field':'contacts[C1].mobile_phone','message':'\\\"020 7946 "
        "0000\\\" is not a valid IE phone number (too long); it was not "
        "imported'}]");

    msgr_test_output(
        "numbers of other countries in international form are kept",
        "{'contacts':[" CON ",'home_phone':'0033 1 23 45 67 89',"
        "'work_phone':'+31 20 123 4567','mobile_phone':'+353 87 123 4567'}"
        "]}",
        "{'default_country':'GB','students':[],'contacts':["
        "{'mis_id':'C1','title':'','first_name':'Jane','last_name':'Jones',"
        "'home_phone':'+33123456789','work_phone':'+31201234567',"
        "'mobile_phone':'+353871234567','email':null,'language':'en',"
        "'phone_problems':{}}],'staff':[],'groups':[]}",
        "[]");
}


/* bad phones stay warnings even when the snapshot has errors elsewhere */

static void
msgr_test_warnings_vs_errors(void)
{
    msgr_test_result_t   r;

    msgr_test_run_text(&r, "{'contacts':[" CON ",'mobile_phone':'07700 12',"
                           "'email':'jane'}]}");

    msgr_test_ok(r.rc == MSGR_MIS_INVALID && r.out == NULL
                 && r.warnings == NULL
                 && msgr_test_is(r.errors,
                                 "[" E("contacts[C1].email", EMAIL) "]"),
                 "an invalid snapshot lists its errors only: a bad phone "
                 "is not one");
    msgr_test_free(&r);

    msgr_test_run_text(&r, "{'default_country':'XX','contacts':[" CON
                           ",'mobile_phone':'07700 900123'}]}");

    msgr_test_ok(r.rc == MSGR_MIS_INVALID
                 && msgr_test_is(r.errors,
                                 "[" E("default_country", COUNTRIES) "]"),
                 "a bad default_country is one error, not one per phone");
    msgr_test_free(&r);
}


/* n copies of the record, their mis_ids prefix0, prefix1, ... */

static json_t *
msgr_test_records(size_t n, const char *record, const char *prefix)
{
    char     id[64];
    size_t   i;
    json_t  *list, *r, *copy;

    list = json_array();
    r = msgr_test_json(record);

    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s%zu", prefix, i);
        copy = json_deep_copy(r);
        json_object_set_new(copy, "mis_id", json_string(id));
        json_array_append_new(list, copy);
    }

    json_decref(r);

    return list;
}


static void
msgr_test_limit(const char *list, size_t max, const char *record,
    const char *prefix)
{
    int                  ok;
    char                 desc[128], want[256];
    json_t              *snapshot, *records, *more;
    msgr_test_result_t   r;

    records = msgr_test_records(max, record, prefix);
    snapshot = json_object();
    json_object_set(snapshot, list, records);

    msgr_test_run(&r, snapshot);

    snprintf(desc, sizeof(desc), "%zu %s are allowed", max, list);
    ok = msgr_test_valid(&r)
         && json_array_size(json_object_get(r.out, list)) == max;
    msgr_test_ok(ok, desc);
    msgr_test_free(&r);

    more = msgr_test_records(1, record, "extra");
    json_array_extend(records, more);
    json_decref(more);

    msgr_test_run(&r, snapshot);

    snprintf(want, sizeof(want), "[{'field':'%s','message':'must list at "
             "most %zu %s'}]", list, max, list);
    snprintf(desc, sizeof(desc), "%zu %s are too many", max + 1, list);

    ok = r.rc == MSGR_MIS_INVALID && msgr_test_is(r.errors, want);
    if (!msgr_test_ok(ok, desc)) {
        msgr_test_diag("errors", r.errors);
    }

    msgr_test_free(&r);
    json_decref(records);
    json_decref(snapshot);
}


static void
msgr_test_limits(void)
{
    int                  ok;
    char                 buf[128];
    size_t               i;
    json_t              *snapshot, *links, *contacts;
    msgr_test_result_t   r;

    msgr_test_limit("students", 50000, STU "}", "S");
    msgr_test_limit("contacts", 100000, CON "}", "C");
    msgr_test_limit("staff", 10000, STF "}", "T");
    msgr_test_limit("groups", 10000, GRP "}", "G");

    /* a student has at most 99 links, as priorities run from 1 to 99 */

    contacts = msgr_test_records(100, CON "}", "C");
    links = json_array();

    for (i = 0; i < 100; i++) {
        snprintf(buf, sizeof(buf), "{'mis_id':'C%zu','priority':%zu}", i,
                 i + 1);
        json_array_append_new(links, msgr_test_json(buf));
    }

    snapshot = msgr_test_json("{'students':[" STU "}]}");
    json_object_set(json_array_get(json_object_get(snapshot, "students"), 0),
                    "contacts", links);
    json_object_set(snapshot, "contacts", contacts);

    msgr_test_run(&r, snapshot);

    ok = r.rc == MSGR_MIS_INVALID
         && msgr_test_is(r.errors,
                         "[" E("students[S1].contacts", "must list at most "
                               "99 contacts") ","
                             E("students[S1].contacts[C99].priority",
                               "must be an integer from 1 to 99") "]");
    if (!msgr_test_ok(ok, "a student links at most 99 contacts")) {
        msgr_test_diag("errors", r.errors);
    }

    msgr_test_free(&r);

    json_array_remove(links, 99);
    msgr_test_run(&r, snapshot);

    ok = msgr_test_valid(&r)
         && json_array_size(json_object_get(json_array_get(
                json_object_get(r.out, "students"), 0), "contacts")) == 99;
    msgr_test_ok(ok, "a student may link 99 contacts");
    msgr_test_free(&r);

    json_decref(links);
    json_decref(contacts);
    json_decref(snapshot);
}


static void
msgr_test_api(void)
{
    int                  rc;
    char                *before, *after;
    json_t              *snapshot, *out, *errors;
    msgr_test_result_t   r;

    snapshot = msgr_test_json("{'students':[" STU ",'first_name':' Amy '}],"
                              "'contacts':[" CON ",'mobile_phone':'07700 12'"
                              "}]}");
    before = json_dumps(snapshot, JSON_COMPACT);

    msgr_test_run(&r, snapshot);
    msgr_test_free(&r);

    after = json_dumps(snapshot, JSON_COMPACT);
    msgr_test_ok(strcmp(before, after) == 0,
                 "the snapshot itself is not modified");
    free(before);
    free(after);

    rc = msgr_mis_normalise(snapshot, NULL, NULL, NULL);
    msgr_test_ok(rc == MSGR_MIS_OK, "outputs may be NULL when valid");

    out = NULL;
    rc = msgr_mis_normalise(snapshot, &out, NULL, NULL);
    msgr_test_ok(rc == MSGR_MIS_OK && json_is_object(out),
                 "normalised alone may be asked for");
    json_decref(out);
    json_decref(snapshot);

    snapshot = msgr_test_json("{'students':[{}]}");
    rc = msgr_mis_normalise(snapshot, NULL, NULL, NULL);
    msgr_test_ok(rc == MSGR_MIS_INVALID, "outputs may be NULL when invalid");

    out = (json_t *) 1;
    errors = NULL;
    rc = msgr_mis_normalise(snapshot, &out, NULL, &errors);
    msgr_test_ok(rc == MSGR_MIS_INVALID && out == NULL
                 && json_array_size(errors) == 4,
                 "an invalid snapshot sets normalised to NULL");
    json_decref(errors);
    json_decref(snapshot);

    rc = msgr_mis_normalise(NULL, NULL, NULL, &errors);
    msgr_test_ok(rc == MSGR_MIS_INVALID
                 && msgr_test_is(errors, "[" E("", "must be an object") "]"),
                 "a NULL snapshot is not an object");
    json_decref(errors);
}


/* out of memory: fail the nth allocation of one call, for every n */

static size_t  msgr_test_allocs;
static size_t  msgr_test_fail_at;


static void *
msgr_test_malloc(size_t size)
{
    if (++msgr_test_allocs == msgr_test_fail_at) {
        return NULL;
    }

    return malloc(size);
}


static void
msgr_test_oom(void)
{
    int                  rc, bad, n;
    json_t              *snapshot, *want, *out, *warnings, *errors;
    msgr_test_result_t   r;

    static const char  *texts[] = {
        "{'default_country':'GB','students':[" STU ",'contacts':["
        "{'mis_id':'C1','priority':1},{'mis_id':'C2','priority':2}]}],"
        "'contacts':[" CON ",'mobile_phone':'07700 12','email':"
        "' a@b.example '}," CON2 ",'home_phone':'020 7946 0000'}],"
        "'staff':[" STF "}],'groups':[" GRP ",'students':['S1'],"
        "'teachers':['T1']}]}",

        "{'x':1,'students':[" STU ",'contacts':[{'mis_id':'C9',"
        "'priority':1},{'mis_id':'C9','priority':1}]},{'mis_id':''}],"
        "'groups':[" GRP ",'students':['S1','S1','S9'],'type':'year',"
        "'teachers':['T1']}]}"
    };

    for (n = 0; n < 2; n++) {
        snapshot = msgr_test_json(texts[n]);
        msgr_test_run(&r, snapshot);
        want = json_incref(r.rc == MSGR_MIS_OK ? r.out : r.errors);
        msgr_test_free(&r);

        bad = 0;

        for (msgr_test_fail_at = 1; /* void */; msgr_test_fail_at++) {
            out = warnings = errors = (json_t *) 1;
            msgr_test_allocs = 0;

            json_set_alloc_funcs(msgr_test_malloc, free);
            rc = msgr_mis_normalise(snapshot, &out, &warnings, &errors);
            json_set_alloc_funcs(malloc, free);

            if (msgr_test_allocs < msgr_test_fail_at) {
                /* nothing failed: the whole call has been covered */

                if (!json_equal(rc == MSGR_MIS_OK ? out : errors, want)) {
                    bad++;
                }

                json_decref(out);
                json_decref(warnings);
                json_decref(errors);
                break;
            }

            if (rc != MSGR_MIS_ERROR || out != NULL || warnings != NULL
                || errors != NULL)
            {
                if (bad++ == 0) {
                    printf("# allocation %zu failed: rc %d\n",
                           msgr_test_fail_at, rc);
                }

                if (rc != MSGR_MIS_ERROR) {
                    json_decref(out);
                    json_decref(warnings);
                    json_decref(errors);
                }
            }
        }

        printf("# %zu allocations\n", msgr_test_fail_at - 1);

        msgr_test_ok(bad == 0 && msgr_test_fail_at > 50,
                     n == 0 ? "out of memory at any allocation of a valid "
                              "snapshot gives -1 and no output"
                            : "out of memory at any allocation of an "
                              "invalid snapshot gives -1 and no output");

        json_decref(want);
        json_decref(snapshot);
    }
}


/*
 * out has a student of each status, a group of each type, a contact linked
 * to more than one student, and staff
 */

static int
msgr_test_example_kinds(json_t *out)
{
    int          k, shared, status[4], type[4];
    size_t       i, j;
    json_t      *v, *l, *linked;
    const char  *id;

    static const char  *statuses[] = { "on_roll", "guest", "pre_admission",
                                       "leaver" };
    static const char  *types[] = { "class", "registration", "year",
                                    "custom" };

    memset(status, 0, sizeof(status));
    memset(type, 0, sizeof(type));
    shared = 0;
    linked = json_object();

    json_array_foreach(json_object_get(out, "students"), i, v) {
        for (k = 0; k < 4; k++) {
            status[k] += strcmp(json_string_value(json_object_get(
                                    v, "status")), statuses[k]) == 0;
        }

        json_array_foreach(json_object_get(v, "contacts"), j, l) {
            id = json_string_value(json_object_get(l, "mis_id"));

            if (json_object_get(linked, id) != NULL) {
                shared++;
            }

            json_object_set_new(linked, id, json_true());
        }
    }

    json_array_foreach(json_object_get(out, "groups"), i, v) {
        for (k = 0; k < 4; k++) {
            type[k] += strcmp(json_string_value(json_object_get(v, "type")),
                              types[k]) == 0;
        }
    }

    json_decref(linked);

    for (k = 0; k < 4; k++) {
        if (status[k] == 0 || type[k] == 0) {
            return 0;
        }
    }

    return shared > 0 && json_array_size(json_object_get(out, "staff")) > 0;
}


/* the full example of docs/mis-sync.md is a valid snapshot */

static void
msgr_test_docs(void)
{
    int                  ok;
    char                *doc, *start, *end;
    long                 len;
    FILE                *f;
    json_t              *snapshot;
    json_error_t         err;
    msgr_test_result_t   r;

    doc = NULL;
    snapshot = NULL;

    f = fopen("docs/mis-sync.md", "r");

    if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0
        && fseek(f, 0, SEEK_SET) == 0)
    {
        doc = calloc(1, len + 1);
        if (doc != NULL && fread(doc, 1, len, f) != (size_t) len) {
            free(doc);
            doc = NULL;
        }
    }

    if (f != NULL) {
        fclose(f);
    }

    start = doc != NULL ? strstr(doc, "\n## A full example") : NULL;
    start = start != NULL ? strstr(start, "\n```json\n") : NULL;
    end = start != NULL ? strstr(start + 9, "\n```\n") : NULL;

    if (end != NULL) {
        *end = '\0';
        snapshot = json_loads(start + 9, 0, &err);
        if (snapshot == NULL) {
            printf("# docs/mis-sync.md: line %d: %s\n", err.line, err.text);
        }
    }

    free(doc);

    if (!msgr_test_ok(snapshot != NULL, "docs/mis-sync.md has a full "
                      "example snapshot in a json block")) {
        msgr_test_ok(0, "the example is valid");
        msgr_test_ok(0, "the example has one of each kind");
        return;
    }

    msgr_test_run(&r, snapshot);

    ok = msgr_test_valid(&r)
         && msgr_test_is(r.warnings,
                         "[{'field':'contacts[C4].mobile_phone','message':"
                         "'\\\"07700 9001\\\" is not a valid GB phone number "
                         "(too short); it was not imported'}]");
    if (!msgr_test_ok(ok, "the example is valid, with the one warning the "
                      "document shows"))
    {
        msgr_test_diag("warnings", r.warnings);
    }

    ok = r.out != NULL && msgr_test_example_kinds(r.out);

    msgr_test_ok(ok, "the example has a student of each status, siblings "
                 "sharing a contact, staff and a group of each type");

    msgr_test_free(&r);
    json_decref(snapshot);
}


int
main(void)
{
    const msgr_test_case_t  *c;

    printf("1..%d\n", MSGR_TEST_PLAN);

    for (c = msgr_test_cases; c->desc != NULL; c++) {
        msgr_test_case(c);
    }

    msgr_test_outputs();
    msgr_test_warnings_vs_errors();
    msgr_test_limits();
    msgr_test_api();
    msgr_test_oom();
    msgr_test_docs();

    return msgr_test_end(MSGR_TEST_PLAN);
}
