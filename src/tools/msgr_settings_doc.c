/*
 * msgr-settings-doc: writes docs/settings.md, the reference of the account
 * settings, from the table in src/msgr_settings.c (`make docs`).
 */

#include <stdio.h>

#include "msgr_settings.h"


int
main(void)
{
    msgr_settings_doc(stdout);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("msgr-settings-doc: stdout");
        return 1;
    }

    return 0;
}
