/* SSE reader: line endings, comments, optional space, events split at every byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/sse.h"

struct seen {
    char log[4096];
    int events;
};

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct seen *s = arg;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof(s->log) - n, "%s[%.*s|%.*s]", ev->comment ? "#" : "",
             (int)ev->type_len, ev->type, (int)ev->data_len, ev->data);
    s->events++;
    return 0;
}

static void feed_all(const char *input, size_t step, struct seen *s)
{
    struct sl_sse_reader r;
    sl_sse_reader_init(&r, 1 << 20);
    size_t n = strlen(input);
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i += step)
        assert_int_equal(sl_sse_feed(&r, input + i, step < n - i ? step : n - i, on_event, s), 0);
    sl_sse_reader_release(&r);
}

static void test_lf_and_space(void **state)
{
    struct seen s;
    feed_all("data: a\n\ndata:b\n\n", 100, &s);
    assert_string_equal(s.log, "[|a][|b]");
}

static void test_every_split_point(void **state)
{
    const char *in = ": keep-alive\r\n\r\nevent: message_start\r\ndata: {\"x\":\"\xe6\x9d\xad\"}\r\n"
                     "\r\ndata: one\ndata: two\n\n\rdata: cr\r\rdata: [DONE]\n\n";
    const char *want = "#[|keep-alive][message_start|{\"x\":\"\xe6\x9d\xad\"}][|one\ntwo][|cr][|[DONE]]";
    for (size_t step = 1; step <= strlen(in); step++) {
        struct seen s;
        feed_all(in, step, &s);
        assert_string_equal(s.log, want);
    }
}

static void test_unterminated_event_is_pending(void **state)
{
    struct sl_sse_reader r;
    struct seen s = {0};
    sl_sse_reader_init(&r, 1024);
    assert_int_equal(sl_sse_feed(&r, "data: cut", 9, on_event, &s), 0);
    assert_int_equal(s.events, 0);
    assert_true(sl_sse_pending(&r));
    sl_sse_reader_release(&r);
}

static void test_event_too_big(void **state)
{
    struct sl_sse_reader r;
    struct seen s = {0};
    char big[200];
    memset(big, 'a', sizeof(big));
    sl_sse_reader_init(&r, 64);
    assert_int_equal(sl_sse_feed(&r, big, sizeof(big), on_event, &s), SL_SSE_TOO_BIG);
    sl_sse_reader_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf_and_space),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_unterminated_event_is_pending),
        cmocka_unit_test(test_event_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
