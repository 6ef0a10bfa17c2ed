/*
 * msgr: the password policy of the Security tab (pure C).
 *
 * Each strength level is a row of one table: its least length and the kinds
 * of character it needs; very_strong also asks zxcvbn (Debian's libzxcvbn)
 * how many bits a guesser would need, with the user's own name and email
 * address as dictionary words.
 */

#include <stdlib.h>
#include <string.h>
#include <zxcvbn.h>

#include "msgr_text.h"
#include "msgr_password.h"


#define MSGR_PW_LOWER   0x01
#define MSGR_PW_UPPER   0x02
#define MSGR_PW_DIGIT   0x04
#define MSGR_PW_SYMBOL  0x08


typedef struct {
    const char     *name;
    size_t          min_chars;
    const char     *too_short;
    unsigned        needs;
    unsigned        dictionary:1;
} msgr_password_level_t;


static const msgr_password_level_t  msgr_password_levels[] = {
    { "any", 8, "must be at least 8 characters long", 0, 0 },
    { "medium", 8, "must be at least 8 characters long",
      MSGR_PW_LOWER|MSGR_PW_UPPER|MSGR_PW_DIGIT, 0 },
    { "strong", 10, "must be at least 10 characters long",
      MSGR_PW_LOWER|MSGR_PW_UPPER|MSGR_PW_DIGIT|MSGR_PW_SYMBOL, 0 },
    { "very_strong", 12, "must be at least 12 characters long",
      MSGR_PW_LOWER|MSGR_PW_UPPER|MSGR_PW_DIGIT|MSGR_PW_SYMBOL, 1 },
    { NULL, 0, NULL, 0, 0 }
};


static const struct {
    unsigned        kind;
    const char     *missing;
} msgr_password_kinds[] = {
    { MSGR_PW_LOWER, "must contain a lower-case letter (a-z)" },
    { MSGR_PW_UPPER, "must contain an upper-case letter (A-Z)" },
    { MSGR_PW_DIGIT, "must contain a digit (0-9)" },
    { MSGR_PW_SYMBOL, "must contain a symbol (anything but a-z, A-Z and "
                      "0-9, e.g. !@#$%^)" },
    { 0, NULL }
};


static int msgr_password_guessable(const char *pw, const char *name,
    const char *email);


int
msgr_password_strength(const char *name)
{
    int  i;

    for (i = 0; name && msgr_password_levels[i].name; i++) {
        if (strcmp(name, msgr_password_levels[i].name) == 0) {
            return i;
        }
    }

    return -1;
}


int
msgr_password_history_depth(const char *name)
{
    return (name && strcmp(name, "last_5") == 0) ? 5 : 1;
}


int
msgr_password_check(const char *pw, size_t len, int strength,
    const char *name, const char *email, msgr_password_report_pt report,
    void *data)
{
    int                           n, rc;
    size_t                        i, chars;
    unsigned                      kinds;
    unsigned char                 c;
    const msgr_password_level_t  *lv;

    if (strength < MSGR_PASSWORD_ANY || strength > MSGR_PASSWORD_VERY_STRONG) {
        strength = MSGR_PASSWORD_ANY;
    }

    lv = &msgr_password_levels[strength];
    n = 0;

    if (msgr_text_has_control(pw, len) || memchr(pw, '\0', len)) {
        report(data, "must not contain control characters");
        return 1;
    }

    chars = msgr_utf8_chars(pw, len);

    if (chars < lv->min_chars) {
        report(data, lv->too_short);
        n++;
    }

    if (chars > MSGR_PASSWORD_MAX_CHARS) {
        report(data, "must be at most 128 characters long");
        n++;
    }

    kinds = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) pw[i];

        if (c >= 'a' && c <= 'z') {
            kinds |= MSGR_PW_LOWER;

        } else if (c >= 'A' && c <= 'Z') {
            kinds |= MSGR_PW_UPPER;

        } else if (c >= '0' && c <= '9') {
            kinds |= MSGR_PW_DIGIT;

        } else {
            kinds |= MSGR_PW_SYMBOL;
        }
    }

    for (i = 0; msgr_password_kinds[i].kind; i++) {
        if ((lv->needs & msgr_password_kinds[i].kind)
            && !(kinds & msgr_password_kinds[i].kind))
        {
            report(data, msgr_password_kinds[i].missing);
            n++;
        }
    }

    if (lv->dictionary && chars <= MSGR_PASSWORD_MAX_CHARS) {
        rc = msgr_password_guessable(pw, name, email);

        if (rc < 0) {
            return -1;
        }

        if (rc) {
            report(data, "would be found by a dictionary attack: avoid "
                         "words, names (your own above all), your email "
                         "address, dates, repeats and keyboard patterns");
            n++;
        }
    }

    return n;
}


/*
 * 1 when zxcvbn estimates fewer than MSGR_PASSWORD_MIN_ENTROPY bits; the
 * user's name, email address and their parts (split at spaces, dots,
 * hyphens, "_", "+" and "@"), lower-cased, are its user dictionary.
 */

static int
msgr_password_guessable(const char *pw, const char *name, const char *email)
{
    int          rc;
    char        *buf, *p, *q, **words;
    size_t       size, n, i, k, len;
    double       bits;
    const char  *src[2];

    src[0] = name ? name : "";
    src[1] = email ? email : "";

    size = strlen(src[0]) + strlen(src[1]) + 2;

    /* each part takes two bytes at least: its first and a separator */
    words = malloc((size + 4) * sizeof(char *));
    buf = malloc(2 * size);

    if (words == NULL || buf == NULL) {
        free(words);
        free(buf);
        return -1;
    }

    n = 0;
    p = buf;

    for (k = 0; k < 2; k++) {
        len = strlen(src[k]);

        if (len == 0) {
            continue;
        }

        /* the whole, lower-cased, then a copy cut into its parts */

        for (i = 0; i <= len; i++) {
            p[i] = (src[k][i] >= 'A' && src[k][i] <= 'Z')
                   ? src[k][i] - 'A' + 'a' : src[k][i];
        }

        words[n++] = p;
        q = p + len + 1;
        memcpy(q, p, len + 1);

        for (i = 0; i < len; i++) {
            if (strchr(" .-_+@", q[i]) != NULL) {
                q[i] = '\0';
            }
        }

        for (i = 0; i < len; i++) {
            if (q[i] != '\0' && (i == 0 || q[i - 1] == '\0')) {
                words[n++] = &q[i];
            }
        }

        p = q + len + 1;
    }

    words[n] = NULL;

    bits = ZxcvbnMatch(pw, (const char **) words, NULL);
    rc = bits < MSGR_PASSWORD_MIN_ENTROPY;

    free(words);
    free(buf);

    return rc;
}
