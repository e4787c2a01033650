/* Tokens from characters: a byte-class walk, no tables, no allocation. Ratios follow
 * DeepSeek's published guidance (1 English character ~ 0.3 token, 1 Chinese ~ 0.6). */
#include "meter/estimate.h"

#include <string.h>

#define MESSAGE_OVERHEAD 4 /* role and framing tokens of one chat message */

int64_t sl_estimate_text(const char *s, size_t n)
{
    /* Count in tenths of a token to stay in integers. */
    int64_t tenths = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            tenths += (c == ' ' || c == '\n' || c == '\t') ? 1 : 3;
            p++;
        } else if ((c & 0xE0) == 0xC0) {
            tenths += 4; /* Latin-1 supplement, Cyrillic, Greek... */
            p += 2;
        } else if ((c & 0xF0) == 0xE0) {
            tenths += 6; /* CJK and other BMP scripts */
            p += 3;
        } else {
            tenths += 10; /* emoji and rare scripts: usually a token or more */
            p += 4;
        }
    }
    return (tenths + 9) / 10;
}

static int64_t estimate_value(const cJSON *v)
{
    if (cJSON_IsString(v))
        return sl_estimate_text(v->valuestring, strlen(v->valuestring));
    int64_t sum = 0;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        const cJSON *c;
        cJSON_ArrayForEach(c, v)
        {
            /* Image parts cost a fixed amount at most providers' low detail. */
            if (c->string && strcmp(c->string, "image_url") == 0)
                sum += 85;
            else if (!c->string || strcmp(c->string, "type") != 0)
                sum += estimate_value(c);
        }
    }
    return sum;
}

int64_t sl_estimate_messages(const cJSON *messages)
{
    int64_t sum = 0;
    const cJSON *m;
    if (!cJSON_IsArray(messages))
        return 0;
    cJSON_ArrayForEach(m, messages)
    {
        sum += MESSAGE_OVERHEAD;
        sum += estimate_value(cJSON_GetObjectItemCaseSensitive(m, "content"));
        sum += estimate_value(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
        sum += estimate_value(cJSON_GetObjectItemCaseSensitive(m, "name"));
    }
    return sum + 3; /* the reply's priming */
}
