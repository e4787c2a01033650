/* The usage ledger: callers copy rows into a queue of chunks under a mutex; one
 * writer thread takes a chunk at a time and commits it in one transaction. */
#include "meter/ledger.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "store/store.h"

/* One chunk is one transaction: group commit turns ~1,000 fsync-bound commits
 * into one. Chunks are recycled, so steady state allocates nothing. */
#define CHUNK_ROWS 1000
#define MAX_SPARE 4
/* Rows waiting before record() blocks: ~1 GB, minutes of traffic at any rate
 * we expect, so it is only reached when the disk has stopped taking writes. */
#define QUEUE_CAP (1000u * 1000u)
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000
/* While closing, a write that keeps failing is abandoned (and logged) after this
 * many tries, so shutdown cannot hang forever on a full disk. */
#define CLOSE_TRIES 20
/* Once woken, the writer lets rows gather this long before it commits a part-full
 * chunk: one wake-up and one transaction per burst instead of one per request. */
#define LINGER_MS 20
/* Retention deletes old raw rows at most this often, after a write. */
#define PRUNE_EVERY_MS (3600 * 1000LL)
#define DAY_MS         (86400 * 1000LL)

struct chunk {
    struct chunk *next;
    size_t n;
    struct sl_usage_row rows[CHUNK_ROWS];
};

struct sl_ledger {
    struct sl_store *store; /* used by the writer thread only, after open */
    pthread_t writer;
    pthread_mutex_t lock;
    pthread_cond_t work;     /* the writer waits here for rows or stopping */
    pthread_cond_t progress; /* flush() and record() over the cap wait here */
    /* Everything below up to the atomics is guarded by lock. */
    struct chunk *head, *tail; /* queued rows, oldest first */
    struct chunk *spare;       /* recycled chunks */
    size_t nspare;
    size_t pending;   /* rows queued or being written */
    uint64_t queued;  /* rows ever queued */
    uint64_t settled; /* rows committed or abandoned; they settle in queue order */
    int stopping;
    int idle;         /* the writer waits for rows: the next record() must wake it */
    int flushing;     /* flush() callers waiting: the writer must not linger */
    int warned_full;
    /* Written under lock, read from anywhere. */
    atomic_uint_fast64_t committed, transactions, dropped;
    atomic_int retention_days; /* 0 = keep raw rows forever */
    int64_t pruned_ms;         /* writer thread only: last retention pass */
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int is_stopping(struct sl_ledger *l)
{
    pthread_mutex_lock(&l->lock);
    int stopping = l->stopping;
    pthread_mutex_unlock(&l->lock);
    return stopping;
}

/* Retries with a doubling backoff until the rows are in: a ledger that drops
 * rows silently would undercount spend. Returns 0, or -1 only while closing. */
static int write_chunk(struct sl_ledger *l, const struct chunk *c)
{
    char err[512];
    long delay = RETRY_MIN_MS;
    for (int tries = 1;; tries++) {
        int result = sl_store_insert_usage(l->store, c->rows, c->n, err, sizeof(err));
        if (result == SL_STORE_OK) {
            if (tries > 1)
                sl_info("ledger: wrote %zu rows after %d tries", c->n, tries);
            return 0;
        }
        if (tries >= CLOSE_TRIES && is_stopping(l)) {
            sl_error("ledger: giving up on %zu rows at shutdown after %d tries: %s", c->n, tries,
                     err);
            return -1;
        }
        if (tries == 1 || tries % 10 == 0)
            sl_warn("ledger: writing %zu rows failed (try %d), retrying: %s", c->n, tries, err);
        sleep_ms(delay);
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
}

static struct chunk *take_chunk(struct sl_ledger *l)
{
    struct chunk *c = l->head;
    if (c) {
        l->head = c->next;
        if (!l->head)
            l->tail = NULL;
        c->next = NULL;
    }
    return c;
}

static void recycle_chunk(struct sl_ledger *l, struct chunk *c)
{
    if (l->nspare < MAX_SPARE) {
        c->next = l->spare;
        l->spare = c;
        l->nspare++;
    } else {
        free(c);
    }
}

static void settle_chunk(struct sl_ledger *l, struct chunk *c, int written)
{
    l->pending -= c->n;
    l->settled += c->n;
    if (written) {
        atomic_fetch_add(&l->committed, c->n);
        atomic_fetch_add(&l->transactions, 1);
    } else {
        atomic_fetch_add(&l->dropped, c->n);
    }
    recycle_chunk(l, c);
    pthread_cond_broadcast(&l->progress);
}

static void linger(struct sl_ledger *l)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += LINGER_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&l->work, &l->lock, &until);
}

/* Retention, on the writer thread (the store's only user): raw rows of days older than
 * retention_days go; their daily roll-ups stay. */
static void maybe_prune(struct sl_ledger *l)
{
    int days = atomic_load(&l->retention_days);
    int64_t now = sl_wall_ms(), deleted = 0;
    char err[512];
    if (!days || now - l->pruned_ms < PRUNE_EVERY_MS)
        return;
    l->pruned_ms = now;
    if (sl_store_prune_usage(l->store, now - days * DAY_MS, &deleted, err, sizeof(err)))
        sl_warn("ledger: retention: %s", err);
    else if (deleted)
        sl_info("ledger: retention removed %lld raw rows older than %d days (daily roll-ups "
                "kept)", (long long)deleted, days);
}

/* Runs until closing and the queue is empty, so close() implies a full flush. */
static void *writer_main(void *arg)
{
    struct sl_ledger *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->head && !l->stopping) {
            l->idle = 1;
            pthread_cond_wait(&l->work, &l->lock);
            l->idle = 0;
        }
        if (!l->stopping && !l->flushing && l->head == l->tail && l->head->n < CHUNK_ROWS)
            linger(l);
        struct chunk *c = take_chunk(l);
        if (!c)
            break;
        pthread_mutex_unlock(&l->lock);
        int written = write_chunk(l, c) == 0;
        maybe_prune(l);
        pthread_mutex_lock(&l->lock);
        settle_chunk(l, c, written);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int sl_ledger_open(const char *store_url, struct sl_ledger **out, char *err, size_t errlen)
{
    struct sl_ledger *l = calloc(1, sizeof(*l));
    int result = -1;
    *out = NULL;
    if (!l) {
        snprintf(err, errlen, "ledger: out of memory");
        goto out;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->progress, NULL);
    if (sl_store_open(store_url, 0, &l->store, err, errlen) != SL_STORE_OK)
        goto out;
    if (pthread_create(&l->writer, NULL, writer_main, l) != 0) {
        snprintf(err, errlen, "ledger: cannot start the writer thread");
        goto out;
    }
    result = 0;
out:
    if (result && l) {
        sl_store_close(l->store);
        pthread_cond_destroy(&l->progress);
        pthread_cond_destroy(&l->work);
        pthread_mutex_destroy(&l->lock);
        free(l);
        l = NULL;
    }
    *out = l;
    return result;
}

/* Backpressure only when the writer is far behind; warn once, not per row. */
static void wait_for_room(struct sl_ledger *l)
{
    while (l->pending >= QUEUE_CAP) {
        if (!l->warned_full) {
            l->warned_full = 1;
            sl_warn("ledger: %u rows waiting for the store; requests now wait for the writer",
                    QUEUE_CAP);
        }
        pthread_cond_wait(&l->progress, &l->lock);
    }
}

/* The chunk the next row goes into: the tail while it has room, else a new one. */
static struct chunk *tail_with_room(struct sl_ledger *l)
{
    if (l->tail && l->tail->n < CHUNK_ROWS)
        return l->tail;
    struct chunk *c = l->spare;
    if (c) {
        l->spare = c->next;
        l->nspare--;
    } else if (!(c = malloc(sizeof(*c)))) {
        return NULL;
    }
    c->next = NULL;
    c->n = 0;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    return c;
}

void sl_ledger_record(struct sl_ledger *l, const struct sl_usage_row *row)
{
    pthread_mutex_lock(&l->lock);
    wait_for_room(l);
    struct chunk *c = tail_with_room(l);
    if (c) {
        c->rows[c->n++] = *row;
        l->pending++;
        l->queued++;
        if (l->idle || c->n == CHUNK_ROWS)
            pthread_cond_signal(&l->work);
    } else {
        atomic_fetch_add(&l->dropped, 1);
    }
    pthread_mutex_unlock(&l->lock);
    if (!c)
        sl_error("ledger: out of memory, usage row %.64s lost", row->id);
}

void sl_ledger_flush(struct sl_ledger *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t target = l->queued;
    l->flushing++;
    pthread_cond_signal(&l->work); /* cut a linger short */
    while (l->settled < target)
        pthread_cond_wait(&l->progress, &l->lock);
    l->flushing--;
    pthread_mutex_unlock(&l->lock);
}

static void free_chunks(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

void sl_ledger_close(struct sl_ledger *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->writer, NULL);
    free_chunks(l->head); /* empty: the writer drains the queue before it exits */
    free_chunks(l->spare);
    sl_store_close(l->store);
    pthread_cond_destroy(&l->progress);
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void sl_ledger_set_retention(struct sl_ledger *l, int days)
{
    atomic_store(&l->retention_days, days > 0 ? days : 0);
}

uint64_t sl_ledger_committed(const struct sl_ledger *l)
{
    return atomic_load(&l->committed);
}

uint64_t sl_ledger_transactions(const struct sl_ledger *l)
{
    return atomic_load(&l->transactions);
}

uint64_t sl_ledger_dropped(const struct sl_ledger *l)
{
    return atomic_load(&l->dropped);
}
