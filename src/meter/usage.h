/* Token usage of one request, normalised to OpenAI's meaning: cached is part of
 * prompt, reasoning is part of completion. */
#ifndef SL_USAGE_H
#define SL_USAGE_H

#include <stdint.h>

struct sl_usage {
    int64_t prompt, completion, cached, reasoning;
    int present; /* the provider reported usage */
};

#endif
