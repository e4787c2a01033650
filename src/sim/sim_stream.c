/* The order and timing of a streamed answer's pieces, with the injected failures
 * (stall, malformed event, error event, dropped connection) put in their place.
 * Pieces are produced one at a time so a long reply never sits in memory encoded. */
#include <string.h>

#include "sim/sim_internal.h"

enum phase {
    PH_KEEPALIVE,
    PH_START,
    PH_REASONING,
    PH_TEXT,
    PH_TOOL_START,
    PH_TOOL_ARGS,
    PH_FINISH,
    PH_USAGE,
    PH_DONE,
    PH_END,
};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void sl_sim_cursor_init(struct sim_cursor *c, const struct sim_exchange *x, int ttft_ms,
                        int delay_ms, int words_per_chunk)
{
    memset(c, 0, sizeof(*c));
    c->x = x;
    c->ttft_ms = ttft_ms;
    c->delay_ms = delay_ms;
    c->words_per_chunk = words_per_chunk > 0 ? words_per_chunk : 1;
    c->keepalives = x->dir->keepalive > 0 ? x->dir->keepalive : 0;
    c->first = 1;
    c->block = -1;
    c->phase = PH_KEEPALIVE;
}

static int emit(struct sim_cursor *c, struct sim_piece *p, enum sim_piece_kind kind,
                const char *text, size_t len)
{
    p->kind = kind;
    p->text = text;
    p->len = len;
    p->call = c->call;
    p->delay_ms = (c->first ? c->ttft_ms : c->delay_ms) + c->extra_ms;
    p->block = c->block;
    p->opens = p->closes = 0;
    p->reasoning_words = c->reasoning_words;
    p->text_words = c->text_words;
    p->failed = c->failed;
    c->first = 0;
    c->extra_ms = 0;
    return 1;
}

/* Marks the piece just emitted as the first and / or last of a block. */
static void frame(struct sim_cursor *c, struct sim_piece *p, int opens, int closes)
{
    if (opens)
        p->block = ++c->block;
    p->opens = opens;
    p->closes = closes;
}

/* An injection whose chunk count is reached; past the last content chunk every
 * pending one fires, so a directive always has its effect. */
static int due(int n, int sent, int at_finish)
{
    return n >= 0 && (n == sent || (at_finish && n > sent));
}

/* The injected piece that goes before the next content piece, or -1. A stall has no
 * piece of its own: it delays whatever comes next. */
static int injection(struct sim_cursor *c, int at_finish)
{
    const struct sim_directives *d = c->x->dir;
    if (!c->stall_done && due(d->stall_after, c->content_sent, at_finish)) {
        c->stall_done = 1;
        c->extra_ms += d->stall_after_ms > 0 ? d->stall_after_ms : 0;
    }
    if (!c->malformed_done && due(d->malformed_after, c->content_sent, at_finish)) {
        c->malformed_done = 1;
        return SIM_PIECE_MALFORMED;
    }
    if (due(d->error_after, c->content_sent, at_finish)) {
        c->phase = PH_DONE;
        c->failed = 1;
        return SIM_PIECE_ERROR;
    }
    if (due(d->reset_after, c->content_sent, at_finish)) {
        c->phase = PH_END;
        return SIM_PIECE_CLOSE;
    }
    return -1;
}

/* End of the run of `words` words starting at pos, each with its leading whitespace;
 * whitespace left at the very end goes with the last run. */
static size_t word_run(const char *s, size_t len, size_t pos, int words)
{
    size_t i = pos;
    for (int w = 0; w < words && i < len; w++) {
        while (i < len && is_space(s[i]))
            i++;
        while (i < len && !is_space(s[i]))
            i++;
    }
    size_t j = i;
    while (j < len && is_space(s[j]))
        j++;
    return j == len ? len : i;
}

static size_t fragment_end(const char *s, size_t len, size_t pos)
{
    size_t n = sl_sim_utf8_cut(s + pos, len - pos, SIM_ARG_FRAGMENT);
    if (n == 0) /* not UTF-8 after all: still make progress */
        n = len - pos < SIM_ARG_FRAGMENT ? len - pos : SIM_ARG_FRAGMENT;
    return pos + n;
}

/* Emits the next content piece of s (words, or argument fragments), or returns 0
 * when s is used up. */
static int content_piece(struct sim_cursor *c, enum sim_piece_kind kind, const char *s,
                         struct sim_piece *p)
{
    if (!s || c->pos >= c->len)
        return 0;
    int k = injection(c, 0);
    if (k >= 0)
        return emit(c, p, (enum sim_piece_kind)k, NULL, 0);
    size_t end = kind == SIM_PIECE_TOOL_ARGS ? fragment_end(s, c->len, c->pos)
                                             : word_run(s, c->len, c->pos, c->words_per_chunk);
    int words = kind == SIM_PIECE_TOOL_ARGS ? 0 : sl_sim_words(s + c->pos, end - c->pos);
    *(kind == SIM_PIECE_REASONING ? &c->reasoning_words : &c->text_words) += words;
    emit(c, p, kind, s + c->pos, end - c->pos);
    frame(c, p, c->pos == 0 && kind != SIM_PIECE_TOOL_ARGS, end == c->len);
    c->pos = end;
    c->content_sent++;
    return 1;
}

static void enter(struct sim_cursor *c, enum phase ph, const char *text)
{
    c->phase = ph;
    c->pos = 0;
    c->len = text ? strlen(text) : 0;
}

static int tool_start(struct sim_cursor *c, struct sim_piece *p)
{
    const struct sim_answer *a = c->x->ans;
    if (c->call >= a->n_calls) {
        c->phase = PH_FINISH;
        return 0;
    }
    int k = injection(c, 0);
    if (k >= 0)
        return emit(c, p, (enum sim_piece_kind)k, NULL, 0);
    emit(c, p, SIM_PIECE_TOOL_START, a->calls[c->call].name, strlen(a->calls[c->call].name));
    enter(c, PH_TOOL_ARGS, a->calls[c->call].arguments);
    frame(c, p, 1, c->len == 0);
    c->content_sent++;
    return 1;
}

static int finish(struct sim_cursor *c, struct sim_piece *p)
{
    int k = injection(c, 1);
    if (k >= 0)
        return emit(c, p, (enum sim_piece_kind)k, NULL, 0);
    c->phase = PH_USAGE;
    return emit(c, p, SIM_PIECE_FINISH, NULL, 0);
}

int sl_sim_cursor_next(struct sim_cursor *c, struct sim_piece *p)
{
    const struct sim_answer *a = c->x->ans;
    for (;;) {
        switch (c->phase) {
        case PH_KEEPALIVE:
            if (c->keepalives > 0) {
                c->keepalives--;
                return emit(c, p, SIM_PIECE_KEEPALIVE, NULL, 0);
            }
            c->phase = PH_START;
            break;
        case PH_START:
            enter(c, PH_REASONING, a->reasoning);
            return emit(c, p, SIM_PIECE_START, NULL, 0);
        case PH_REASONING:
            if (content_piece(c, SIM_PIECE_REASONING, a->reasoning, p))
                return 1;
            enter(c, PH_TEXT, a->content);
            break;
        case PH_TEXT:
            if (content_piece(c, SIM_PIECE_TEXT, a->content, p))
                return 1;
            c->phase = PH_TOOL_START;
            c->call = 0;
            break;
        case PH_TOOL_START:
            if (tool_start(c, p))
                return 1;
            break;
        case PH_TOOL_ARGS:
            if (content_piece(c, SIM_PIECE_TOOL_ARGS, a->calls[c->call].arguments, p))
                return 1;
            c->call++;
            c->phase = PH_TOOL_START;
            break;
        case PH_FINISH:
            return finish(c, p);
        case PH_USAGE:
            c->phase = PH_DONE;
            if (c->x->usage)
                return emit(c, p, SIM_PIECE_USAGE, NULL, 0);
            break;
        case PH_DONE:
            c->phase = PH_END;
            return emit(c, p, SIM_PIECE_DONE, NULL, 0);
        default:
            return 0;
        }
    }
}
