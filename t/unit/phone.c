/*
 * Unit tests of src/msgr_phone.c: phone numbers to E.164 for every country
 * of the table, national and international forms, separators, trunk
 * prefixes, unknown calling codes, extensions, letters and the reasons
 * given.  Prints TAP.
 *
 * The expectations are written out here from the numbering plans, not read
 * back from the table under test.
 */

#include <stdio.h>
#include <string.h>

#include "msgr_phone.h"
#include "msgr_tap.h"


typedef struct {
    const char     *in;
    const char     *country;
    const char     *e164;      /* NULL: invalid */
    const char     *why;       /* the reason expected when invalid */
} msgr_test_case_t;


static const msgr_test_case_t  msgr_test_cases[] = {

    /* GB: +44, trunk 0, NSN 9 to 10 digits */

    { "07700 900123", "GB", "+447700900123", NULL },
    { "020 7946 0000", "GB", "+442079460000", NULL },
    { "+44 (0)20 7946 0000", "GB", "+442079460000", NULL },
    { "0044 20 7946 0000", "GB", "+442079460000", NULL },
    { "+447700900123", "GB", "+447700900123", NULL },
    { "+44 7700 900123", "GB", "+447700900123", NULL },
    { "+44 07700 900123", "GB", "+447700900123", NULL },
    { "(020) 7946-0000", "GB", "+442079460000", NULL },
    { "020.7946.0000", "GB", "+442079460000", NULL },
    { "020/7946 0000", "GB", "+442079460000", NULL },
    { "  07700\t900123  ", "GB", "+447700900123", NULL },
    { "01632 96012", "GB", "+44163296012", NULL },
    { "0800 123456", "GB", "+44800123456", NULL },
    { "07700 12", "GB", NULL, "too short" },
    { "0800 12345", "GB", NULL, "too short" },
    { "07700 900123 4", "GB", NULL, "too long" },
    { "7700 900123", "GB", NULL, "no leading 0" },
    { "44 7700 900123", "GB", NULL, "no leading 0" },
    { "+44 17700", "GB", NULL, "too short" },
    { "+44 0 0700 900123", "GB", NULL, "not a GB number" },

    /* separators, letters, extensions, characters */

    { "020 7946 0000 ext 12", "GB", NULL, "has an extension" },
    { "020 7946 0000 ext. 12", "GB", NULL, "has an extension" },
    { "020 7946 0000 EXT12", "GB", NULL, "has an extension" },
    { "020 7946 0000 x12", "GB", NULL, "has an extension" },
    { "020 7946 0000X12", "GB", NULL, "has an extension" },
    { "0800 FLOWERS", "GB", NULL, "contains letters" },
    { "tel:+442079460000", "GB", NULL, "contains letters" },
    { "mobile", "GB", NULL, "contains letters" },
    { "020 7946 0000#", "GB", NULL,
      "contains a character that is not allowed" },
    { "020 7946 0000, 020 7946 0001", "GB", NULL,
      "contains a character that is not allowed" },
    { "020\xc2\xa0" "7946 0000", "GB", NULL,
      "contains a character that is not allowed" },
    { "020 7946 +0000", "GB", NULL, "+ is allowed only at the start" },
    { "++44 20 7946 0000", "GB", NULL, "+ is allowed only at the start" },
    { "(+44) 20 7946 0000", "GB", "+442079460000", NULL },
    { "((020)) 7946 0000", "GB", NULL, "unbalanced parentheses" },
    { "(020 7946 0000", "GB", NULL, "unbalanced parentheses" },
    { "020) 7946 0000", "GB", NULL, "unbalanced parentheses" },
    { "", "GB", NULL, "no digits" },
    { " - ", "GB", NULL, "no digits" },
    { "+", "GB", NULL, "no digits" },
    { "00", "GB", NULL, "no digits after the international prefix" },
    { "+0 20 7946 0000", "GB", NULL, "not a valid country calling code" },
    { "0000 20 7946 0000", "GB", NULL, "not a valid country calling code" },
    { "0123456789012345678901", "GB", NULL, "too long" },

    /* another country's number in international form */

    { "+353 87 123 4567", "GB", "+353871234567", NULL },
    { "00353 1 234 5678", "GB", "+35312345678", NULL },
    { "+1 (202) 555-0143", "GB", "+12025550143", NULL },
    { "+33 6 12 34 56 78", "GB", "+33612345678", NULL },
    { "+33 (0)6 12 34 56 78", "GB", "+33612345678", NULL },
    { "+34 612 34 56 78", "GB", "+34612345678", NULL },
    { "+49 30 1234567", "GB", "+49301234567", NULL },
    { "+48 512 345 678", "GB", "+48512345678", NULL },
    { "+91 98765 43210", "GB", "+919876543210", NULL },
    { "+61 4 1234 5678", "GB", "+61412345678", NULL },
    { "+353 87 123", "GB", NULL, "too short" },
    { "+33 6 12 34 56 789", "GB", NULL, "too long" },
    { "+1 202 555 014", "GB", NULL, "too short" },
    { "+1 102 555 0143", "GB", NULL, "not a US number" },

    /* calling codes not in the table: 8 to 15 digits in all */

    { "+31 20 123 4567", "GB", "+31201234567", NULL },
    { "0031 6 1234 5678", "GB", "+31612345678", NULL },
    { "+39 06 1234 5678", "GB", "+390612345678", NULL },
    { "+7 495 123 45 67", "GB", "+74951234567", NULL },
    { "+852 1234 567", "GB", "+8521234567", NULL },
    { "+852 123 4", "GB", NULL, "too short" },
    { "+852 1234 5678 9012 3", "GB", NULL, "too long" },
    { "+999 1234 5678 901", "GB", "+999123456789 01", NULL },

    /* IE: +353, trunk 0, NSN 7 to 9 */

    { "087 123 4567", "IE", "+353871234567", NULL },
    { "01 234 5678", "IE", "+35312345678", NULL },
    { "021 123 456", "IE", "+35321123456", NULL },
    { "0404 12345", "IE", "+35340412345", NULL },
    { "087 123 45678", "IE", NULL, "too long" },
    { "01 23456", "IE", NULL, "too short" },
    { "87 123 4567", "IE", NULL, "no leading 0" },
    { "020 7946 0000", "IE", NULL, "too long" },
    { "+44 20 7946 0000", "IE", "+442079460000", NULL },
    { "0044 7700 900123", "IE", "+447700900123", NULL },

    /* US and CA: +1, trunk 1 optional, NSN 10, international 011 */

    { "(202) 555-0143", "US", "+12025550143", NULL },
    { "202-555-0143", "US", "+12025550143", NULL },
    { "1 202 555 0143", "US", "+12025550143", NULL },
    { "1-202-555-0143", "US", "+12025550143", NULL },
    { "+1 202 555 0143", "US", "+12025550143", NULL },
    { "011 44 20 7946 0000", "US", "+442079460000", NULL },
    { "00 44 20 7946 0000", "US", "+442079460000", NULL },
    { "555-0143", "US", NULL, "too short" },
    { "202 555 01430", "US", NULL, "too long" },
    { "(102) 555-0143", "US", NULL, "not a US number" },
    { "(604) 555-0199", "CA", "+16045550199", NULL },
    { "1 604 555 0199", "CA", "+16045550199", NULL },
    { "+1 104 555 0199", "CA", NULL, "not a CA number" },

    /* FR: +33, trunk 0, NSN 9 */

    { "06 12 34 56 78", "FR", "+33612345678", NULL },
    { "01.23.45.67.89", "FR", "+33123456789", NULL },
    { "6 12 34 56 78", "FR", NULL, "no leading 0" },
    { "06 12 34 56", "FR", NULL, "too short" },

    /* ES: +34, no trunk prefix, NSN 9 */

    { "612 34 56 78", "ES", "+34612345678", NULL },
    { "91 123 45 67", "ES", "+34911234567", NULL },
    { "0612 34 56 78", "ES", NULL, "not an ES number" },
    { "612 34 56", "ES", NULL, "too short" },

    /* DE: +49, trunk 0, NSN 6 to 11 */

    { "030 1234567", "DE", "+49301234567", NULL },
    { "030/12345-67", "DE", "+49301234567", NULL },
    { "0151 23456789", "DE", "+4915123456789", NULL },
    { "0621 1234", "DE", "+496211234", NULL },
    { "030 123", "DE", NULL, "too short" },
    { "0151 234567890", "DE", NULL, "too long" },

    /* PL: +48, no trunk prefix, NSN 9 */

    { "512 345 678", "PL", "+48512345678", NULL },
    { "22 123 45 67", "PL", "+48221234567", NULL },
    { "512 345 67", "PL", NULL, "too short" },

    /* IN: +91, trunk 0, NSN 10 */

    { "098765 43210", "IN", "+919876543210", NULL },
    { "98765 43210", "IN", NULL, "no leading 0" },
    { "+91 98765 4321", "IN", NULL, "too short" },

    /* AU: +61, trunk 0, NSN 9, international 0011 */

    { "0412 345 678", "AU", "+61412345678", NULL },
    { "(02) 9876 5432", "AU", "+61298765432", NULL },
    { "0011 44 20 7946 0000", "AU", "+442079460000", NULL },
    { "0412 345 67", "AU", NULL, "too short" },

    /* the country itself */

    { "07700 900123", "XX", NULL, "unknown country" },
    { "07700 900123", "gb", NULL, "unknown country" },
    { "07700 900123", "", NULL, "unknown country" },

    { NULL, NULL, NULL, NULL }
};


static void
msgr_test_number(const msgr_test_case_t *c)
{
    int          rc, ok;
    char         out[MSGR_PHONE_E164_SIZE], desc[256], want[32];
    const char  *why, *p;
    size_t       n;

    /* the expectations may be spaced for reading */

    n = 0;

    if (c->e164 != NULL) {
        for (p = c->e164; *p != '\0' && n < sizeof(want) - 1; p++) {
            if (*p != ' ') {
                want[n++] = *p;
            }
        }
    }

    want[n] = '\0';

    memset(out, 'z', sizeof(out));
    why = NULL;

    rc = msgr_phone_e164(c->in, c->country, out, sizeof(out), &why);

    if (c->e164 != NULL) {
        snprintf(desc, sizeof(desc), "%s \"%s\" is %s", c->country, c->in,
                 want);
        ok = rc == 0 && strcmp(out, want) == 0;

    } else {
        snprintf(desc, sizeof(desc), "%s \"%s\" is refused: %s",
                 c->country, c->in, c->why);
        ok = rc == -1 && why != NULL && strcmp(why, c->why) == 0
             && out[0] == '\0';
    }

    if (!msgr_test_ok(ok, desc)) {
        printf("# rc %d, out \"%.*s\", why \"%s\"\n", rc,
               (int) sizeof(out), out, why != NULL ? why : "(null)");
    }
}


static void
msgr_test_api(void)
{
    int          rc;
    char         small[14], out[MSGR_PHONE_E164_SIZE];
    size_t       i;
    const char  *why, *c;

    static const char *const  want[] = {
        "GB", "IE", "US", "CA", "FR", "ES", "DE", "PL", "IN", "AU"
    };

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!msgr_phone_country_known(want[i])) {
            break;
        }
    }

    msgr_test_ok(i == sizeof(want) / sizeof(want[0]),
                 "GB, IE, US, CA, FR, ES, DE, PL, IN and AU are known");

    msgr_test_ok(!msgr_phone_country_known("XX")
                 && !msgr_phone_country_known("gb")
                 && !msgr_phone_country_known("GBR")
                 && !msgr_phone_country_known("")
                 && !msgr_phone_country_known(NULL),
                 "unknown, lower case, alpha-3, empty and NULL countries "
                 "are not known");

    for (i = 0; (c = msgr_phone_country(i)) != NULL; i++) {
        if (!msgr_phone_country_known(c)) {
            break;
        }
    }

    msgr_test_ok(c == NULL && i >= sizeof(want) / sizeof(want[0])
                 && strcmp(msgr_phone_country(0), "GB") == 0,
                 "msgr_phone_country() lists known countries, GB first, "
                 "and ends with NULL");

    /* "+447700900123" needs 14 bytes */

    why = NULL;
    rc = msgr_phone_e164("07700 900123", "GB", small, 13, &why);
    msgr_test_ok(rc == -1 && small[0] == '\0' && why != NULL,
                 "an output buffer too small is refused, not overrun");

    rc = msgr_phone_e164("07700 900123", "GB", small, sizeof(small),
                         NULL);
    msgr_test_ok(rc == 0 && strcmp(small, "+447700900123") == 0,
                 "an exact-size buffer is enough; why may be NULL");

    rc = msgr_phone_e164("07700 12", "GB", out, sizeof(out), NULL);
    msgr_test_ok(rc == -1 && out[0] == '\0',
                 "an invalid number with why NULL is refused");

    why = NULL;
    rc = msgr_phone_e164(NULL, "GB", out, sizeof(out), &why);
    msgr_test_ok(rc == -1 && why != NULL, "a NULL number is refused");

    why = NULL;
    rc = msgr_phone_e164("07700 900123", NULL, out, sizeof(out), &why);
    msgr_test_ok(rc == -1 && why != NULL
                 && strcmp(why, "unknown country") == 0,
                 "a NULL country is refused");
}


int
main(void)
{
    int                      plan;
    const msgr_test_case_t  *c;

    plan = 8;

    for (c = msgr_test_cases; c->in != NULL; c++) {
        plan++;
    }

    printf("1..%d\n", plan);

    for (c = msgr_test_cases; c->in != NULL; c++) {
        msgr_test_number(c);
    }

    msgr_test_api();

    return msgr_test_end(plan);
}
