/* sluice version */
#include <stdio.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "cli/commands.h"

int cmd_version(int argc, char **argv)
{
    if (sl_cli_wants_help(argc, argv)) {
        printf("usage: sluice version\n\nPrints sluice's version and the libraries it runs on.\n");
        return 0;
    }
    printf("sluice %s (%s)\n", SL_VERSION, SL_GIT);
    printf("libevent %s, %s\n", event_get_version(), curl_version());
    return 0;
}
