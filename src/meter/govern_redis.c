/* The govern table in Redis (see govern_redis.h). Per scope NAME five keys:
 *   sluice:gov:NAME:conc                  zset  admission id -> lease end (ms)
 *   sluice:gov:NAME:rpm, ...:tpm           hash  Unix second -> requests or tokens
 *   sluice:gov:NAME:budget:W:START:CUR     hash  spent, reserved, r:ID -> reservation
 *   ...budget:W:START:CUR:lease            zset  admission id -> lease end (ms)
 * Admit checks every scope and then charges every scope in one script; settle frees
 * the slot, corrects the tokens and turns the reservation into the real cost in
 * another. Leases that end are reclaimed by the next admit of the scope. Connections:
 * a small pool shared by the workers (one taken per call); one that fails is dropped
 * and the next call reconnects. */
#include "meter/govern_redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#define POOL       64
#define NKEYS      5 /* per scope */
#define ADMIT_ARGS 7 /* per scope */
#define KEYLEN     (SL_GOV_NAME + 64)
#define NUMLEN     24

static const char admit_lua[] =
    "local now=tonumber(ARGV[1]) local id=ARGV[2] local lease=tonumber(ARGV[3])\n"
    "local tok=tonumber(ARGV[4]) local n=tonumber(ARGV[5]) local sec=math.floor(now/1000)\n"
    "local function minute(k)\n"
    "  local v=redis.call('HGETALL',k) local s,b=0,{}\n"
    "  for i=1,#v,2 do local f=tonumber(v[i])\n"
    "    if f<=sec-60 then redis.call('HDEL',k,v[i])\n"
    "    else local c=tonumber(v[i+1]) s=s+c b[#b+1]={f,c} end end\n"
    "  table.sort(b,function(x,y) return x[1]<y[1] end)\n"
    "  return s,b end\n"
    "local function wait(s,b,target)\n"
    "  if s<=target then return 0 end\n"
    "  for _,e in ipairs(b) do s=s-e[2] if s<=target then return (e[1]+60)*1000-now end end\n"
    "  return 60000 end\n"
    "local st={} local out={0,0,0,0,0}\n"
    "for i=1,n do\n"
    "  local k=(i-1)*5 local a=5+(i-1)*7\n"
    "  local rpm,tpm,conc=tonumber(ARGV[a+1]),tonumber(ARGV[a+2]),tonumber(ARGV[a+3])\n"
    "  local lim,cost,seed,ttl=tonumber(ARGV[a+4]),tonumber(ARGV[a+5]),ARGV[a+6],tonumber(ARGV[a+7])\n"
    "  local x={rs=0,rb={},ts=0,tb={}}\n"
    "  if conc>0 then redis.call('ZREMRANGEBYSCORE',KEYS[k+1],'-inf',now)\n"
    "    x.c=redis.call('ZCARD',KEYS[k+1]) end\n"
    "  if rpm>0 then x.rs,x.rb=minute(KEYS[k+2]) end\n"
    "  if tpm>0 then x.ts,x.tb=minute(KEYS[k+3]) end\n"
    "  if lim>0 then local B,L=KEYS[k+4],KEYS[k+5]\n"
    "    if redis.call('EXISTS',B)==0 then redis.call('HSET',B,'spent',seed,'reserved',0)\n"
    "      if ttl>0 then redis.call('PEXPIRE',B,ttl) end end\n"
    "    for _,old in ipairs(redis.call('ZRANGEBYSCORE',L,'-inf',now)) do\n"
    "      local amt=redis.call('HGET',B,'r:'..old)\n"
    "      if amt then redis.call('HINCRBY',B,'reserved',-tonumber(amt)) redis.call('HDEL',B,'r:'..old) end\n"
    "      redis.call('ZREM',L,old) end\n"
    "    x.sp=tonumber(redis.call('HGET',B,'spent') or 0)\n"
    "    x.rv=tonumber(redis.call('HGET',B,'reserved') or 0) end\n"
    "  st[i]=x\n"
    "  if out[1]==0 then\n"
    "    if conc>0 and x.c+1>conc then out={4,i,conc,x.c,1000}\n"
    "    elseif rpm>0 and x.rs+1>rpm then out={2,i,rpm,x.rs,wait(x.rs,x.rb,rpm-1)}\n"
    "    elseif tpm>0 and x.ts+tok>tpm then\n"
    "      out={3,i,tpm,x.ts,(tpm-tok<0) and 60000 or wait(x.ts,x.tb,tpm-tok)}\n"
    "    elseif lim>0 and x.sp+x.rv+cost>lim then out={1,i,lim,x.sp+x.rv,0} end\n"
    "  end\n"
    "end\n"
    "if out[1]==0 then\n"
    "  for i=1,n do local k=(i-1)*5 local a=5+(i-1)*7 local x=st[i]\n"
    "    if tonumber(ARGV[a+3])>0 then redis.call('ZADD',KEYS[k+1],now+lease,id)\n"
    "      redis.call('PEXPIRE',KEYS[k+1],lease) end\n"
    "    if tonumber(ARGV[a+1])>0 then redis.call('HINCRBY',KEYS[k+2],sec,1)\n"
    "      redis.call('PEXPIRE',KEYS[k+2],61000) x.rs=x.rs+1 x.rb[#x.rb+1]={sec,1} end\n"
    "    if tonumber(ARGV[a+2])>0 then redis.call('HINCRBY',KEYS[k+3],sec,tok)\n"
    "      redis.call('PEXPIRE',KEYS[k+3],61000) x.ts=x.ts+tok x.tb[#x.tb+1]={sec,tok} end\n"
    "    if tonumber(ARGV[a+4])>0 then local B,L=KEYS[k+4],KEYS[k+5]\n"
    "      redis.call('HINCRBY',B,'reserved',ARGV[a+5]) redis.call('HSET',B,'r:'..id,ARGV[a+5])\n"
    "      redis.call('ZADD',L,now+lease,id)\n"
    "      local ttl=redis.call('PTTL',B) if ttl>0 then redis.call('PEXPIRE',L,math.max(ttl,lease)) end end\n"
    "  end\n"
    "end\n"
    "for i=1,n do local x=st[i] if not x then break end\n"
    "  local rr=#x.rb>0 and (x.rb[#x.rb][1]+60)*1000-now or 0\n"
    "  local tr=#x.tb>0 and (x.tb[#x.tb][1]+60)*1000-now or 0\n"
    "  out[#out+1]=x.rs out[#out+1]=rr out[#out+1]=x.ts out[#out+1]=tr end\n"
    "return out\n";

/* ARGV: id, token second, token delta, n; per scope: counted, tpm, budgeted, cost. */
static const char settle_lua[] =
    "local id=ARGV[1] local tsec=ARGV[2] local dt=tonumber(ARGV[3]) local n=tonumber(ARGV[4])\n"
    "local out={}\n"
    "for i=1,n do local k=(i-1)*5 local a=4+(i-1)*4\n"
    "  if ARGV[a+1]=='1' then redis.call('ZREM',KEYS[k+1],id) end\n"
    "  if ARGV[a+2]=='1' and dt~=0 then local c=redis.call('HGET',KEYS[k+3],tsec)\n"
    "    if c then local v=tonumber(c)+dt if v<0 then v=0 end redis.call('HSET',KEYS[k+3],tsec,v) end end\n"
    "  local sp=-1\n"
    "  if ARGV[a+3]=='1' then local B=KEYS[k+4]\n"
    "    local amt=redis.call('HGET',B,'r:'..id)\n"
    "    if amt then redis.call('HDEL',B,'r:'..id)\n"
    "      local r=redis.call('HINCRBY',B,'reserved',-tonumber(amt))\n"
    "      if r<0 then redis.call('HSET',B,'reserved',0) end end\n"
    "    redis.call('ZREM',KEYS[k+5],id)\n"
    "    if redis.call('EXISTS',B)==1 then sp=redis.call('HINCRBY',B,'spent',ARGV[a+4]) end end\n"
    "  out[i]=sp end\n"
    "return out\n";

struct script {
    const char *text;
    char sha[41];
};

struct sl_gov_redis {
    char host[256];
    int port, db;
    int64_t lease_ms;
    struct script admit, settle;
    pthread_mutex_t lock;
    redisContext *idle[POOL];
    int nidle;
    char boot[17];               /* random per process: ids unique across replicas */
    unsigned long long next_id;  /* under lock */
};

int sl_gov_redis_parse_url(const char *url, char *host, size_t hostlen, int *port, int *db)
{
    const char *p = url + 8, *end;
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    for (end = p; *end && *end != ':' && *end != '/'; end++)
        if (*end == '@' || (unsigned char)*end <= ' ')
            return -1;
    if (end == p || (size_t)(end - p) >= hostlen)
        return -1;
    memcpy(host, p, (size_t)(end - p));
    host[end - p] = '\0';
    *port = 6379;
    *db = 0;
    if (*end == ':') {
        char *q;
        errno = 0;
        long v = strtol(end + 1, &q, 10);
        if (q == end + 1 || errno || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
        end = q;
    }
    if (*end == '/' && end[1]) {
        char *q;
        errno = 0;
        long v = strtol(end + 1, &q, 10);
        if (q == end + 1 || *q || errno || v < 0 || v > 15)
            return -1;
        *db = (int)v;
        end = q;
    } else if (*end == '/') {
        end++;
    }
    return *end ? -1 : 0;
}

static void sha_hex(const char *text, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

struct sl_gov_redis *sl_gov_redis_new(const char *url, int64_t lease_ms, char *err,
                                      size_t errlen)
{
    struct sl_gov_redis *r = calloc(1, sizeof(*r));
    unsigned char rnd[8];
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sl_gov_redis_parse_url(url, r->host, sizeof(r->host), &r->port, &r->db)) {
        snprintf(err, errlen, "'%.64s' is not redis://HOST[:PORT][/DB]", url);
        free(r);
        return NULL;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        snprintf(err, errlen, "no random bytes for admission ids");
        free(r);
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        snprintf(r->boot + 2 * i, 3, "%02x", rnd[i]);
    r->lease_ms = lease_ms > 0 ? lease_ms : 600000;
    r->admit.text = admit_lua;
    r->settle.text = settle_lua;
    sha_hex(admit_lua, r->admit.sha);
    sha_hex(settle_lua, r->settle.sha);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void sl_gov_redis_free(struct sl_gov_redis *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- connections -------------------------------------------------------------------- */

/* A pooled connection (*pooled = 1), or a new one. */
static redisContext *take(struct sl_gov_redis *r, int *pooled, char *err, size_t errlen)
{
    redisContext *c = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->nidle && pooled)
        c = r->idle[--r->nidle];
    pthread_mutex_unlock(&r->lock);
    if (pooled)
        *pooled = c != NULL;
    if (c)
        return c;
    struct timeval tv = {1, 0};
    c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "cannot connect to redis://%s:%d: %s", r->host, r->port,
                 c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (r->db) {
        redisReply *rep = redisCommand(c, "SELECT %d", r->db);
        int bad = !rep || rep->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(err, errlen, "redis SELECT %d: %s", r->db, rep ? rep->str : c->errstr);
        freeReplyObject(rep);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Puts c back for the next call, or drops it when it failed. */
static void give(struct sl_gov_redis *r, redisContext *c, int failed)
{
    pthread_mutex_lock(&r->lock);
    if (!failed && !c->err && r->nidle < POOL) {
        r->idle[r->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    redisFree(c);
}

int sl_gov_redis_ping(struct sl_gov_redis *r, char *err, size_t errlen)
{
    redisContext *c = take(r, NULL, err, errlen);
    if (!c)
        return -1;
    redisReply *rep = redisCommand(c, "PING");
    int bad = !rep || rep->type == REDIS_REPLY_ERROR;
    if (bad)
        snprintf(err, errlen, "redis PING: %s", rep ? rep->str : c->errstr);
    freeReplyObject(rep);
    give(r, c, bad);
    return bad ? -1 : 0;
}

/* EVALSHA, loading the script when Redis does not know it yet. The reply is an array
 * of integers, or NULL with err. A pooled connection that Redis closed since (a
 * restart) is replaced by a new one once. */
static redisReply *run(struct sl_gov_redis *r, struct script *s, int argc, const char **argv,
                       size_t *lens, char *err, size_t errlen)
{
    int pooled;
    redisContext *c = take(r, &pooled, err, errlen);
    if (!c)
        return NULL;
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = s->sha;
    lens[1] = 40;
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep && pooled && (c->err == REDIS_ERR_EOF || c->err == REDIS_ERR_IO)) {
        give(r, c, 1);
        if (!(c = take(r, NULL, err, errlen)))
            return NULL;
        rep = redisCommandArgv(c, argc, argv, lens);
    }
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        rep = redisCommand(c, "SCRIPT LOAD %s", s->text);
        int ok = rep && rep->type == REDIS_REPLY_STRING;
        freeReplyObject(rep);
        rep = ok ? redisCommandArgv(c, argc, argv, lens) : NULL;
    }
    int bad = !rep || rep->type != REDIS_REPLY_ARRAY;
    if (bad) {
        snprintf(err, errlen, "redis://%s:%d: %s", r->host, r->port,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                 : c->err                             ? c->errstr
                                                      : "unexpected reply");
        freeReplyObject(rep);
        rep = NULL;
    }
    give(r, c, bad);
    return rep;
}

/* ---- arguments ---------------------------------------------------------------------- */

struct args {
    const char *v[2 + SL_GOV_MAX_SCOPES * (NKEYS + ADMIT_ARGS) + 8];
    size_t len[2 + SL_GOV_MAX_SCOPES * (NKEYS + ADMIT_ARGS) + 8];
    char keys[SL_GOV_MAX_SCOPES * NKEYS][KEYLEN];
    char nums[SL_GOV_MAX_SCOPES * ADMIT_ARGS + 8][NUMLEN];
    int n, nkeys, nnums;
};

static void arg(struct args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n++] = strlen(s);
}

static void num(struct args *a, int64_t v)
{
    char *s = a->nums[a->nnums++];
    snprintf(s, NUMLEN, "%lld", (long long)v);
    arg(a, s);
}

static const char *const window_names[] = {"total", "day", "month"};

static void scope_keys(struct args *a, const char *name, enum sl_budget_window w, int64_t start,
                       const char *currency)
{
    static const char *const suffix[] = {"conc", "rpm", "tpm"};
    for (int k = 0; k < 3; k++) {
        snprintf(a->keys[a->nkeys], KEYLEN, "sluice:gov:%s:%s", name, suffix[k]);
        arg(a, a->keys[a->nkeys++]);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(a->keys[a->nkeys], KEYLEN, "sluice:gov:%s:budget:%s:%lld:%s%s", name,
                 window_names[w], (long long)start, currency[0] ? currency : "-",
                 k ? ":lease" : "");
        arg(a, a->keys[a->nkeys++]);
    }
}

/* The first millisecond after the window that starts at start. */
static int64_t window_end(enum sl_budget_window w, int64_t start)
{
    if (w == SL_WINDOW_TOTAL)
        return 0;
    if (w == SL_WINDOW_DAY)
        return start + 86400000LL;
    return sl_budget_window_start(SL_WINDOW_MONTH, start + 32 * 86400000LL);
}

static int64_t item(const redisReply *rep, size_t i)
{
    return i < rep->elements && rep->element[i]->type == REDIS_REPLY_INTEGER
               ? (int64_t)rep->element[i]->integer
               : 0;
}

enum sl_gov_reason sl_gov_redis_admit(struct sl_gov_redis *r, const struct sl_gov_scope *scopes,
                                      size_t n, const struct sl_gov_ask *ask, const int64_t *cost,
                                      const int64_t *seed, struct sl_gov_ticket *t,
                                      struct sl_gov_refusal *ref, char *err, size_t errlen)
{
    struct args *a = calloc(1, sizeof(*a));
    int64_t start[SL_GOV_MAX_SCOPES];
    memset(&t->hdr, 0, sizeof(t->hdr));
    t->n = 0;
    t->active = 0;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return SL_GOV_UNAVAILABLE;
    }
    pthread_mutex_lock(&r->lock);
    unsigned long long id = r->next_id++;
    pthread_mutex_unlock(&r->lock);
    snprintf(t->id, sizeof(t->id), "%s-%llx", r->boot, id);
    a->n = 2; /* EVALSHA sha */
    num(a, (int64_t)(n * NKEYS));
    for (size_t i = 0; i < n; i++) {
        const struct sl_budget *b = &scopes[i].budget;
        start[i] = b->limit_micros ? sl_budget_window_start(b->window, ask->now_ms) : 0;
        scope_keys(a, scopes[i].name, b->window, start[i], b->limit_micros ? b->currency : "");
    }
    num(a, ask->now_ms);
    arg(a, t->id);
    num(a, r->lease_ms);
    num(a, ask->tokens);
    num(a, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        const struct sl_gov_scope *s = &scopes[i];
        int64_t end = s->budget.limit_micros ? window_end(s->budget.window, start[i]) : 0;
        num(a, s->rpm);
        num(a, s->tpm);
        num(a, s->concurrency);
        num(a, s->budget.limit_micros);
        num(a, cost[i]);
        num(a, seed[i]);
        num(a, end ? end - ask->now_ms + 86400000LL : 0); /* kept a day past the window */
    }
    redisReply *rep = run(r, &r->admit, a->n, a->v, a->len, err, errlen);
    free(a);
    if (!rep)
        return SL_GOV_UNAVAILABLE;
    enum sl_gov_reason reason = (enum sl_gov_reason)item(rep, 0);
    memset(&t->hdr, 0, sizeof(t->hdr));
    for (size_t i = 0; i < n && 5 + 4 * i + 3 < rep->elements; i++) {
        const struct sl_gov_scope *s = &scopes[i];
        int64_t rs = item(rep, 5 + 4 * i), rr = item(rep, 6 + 4 * i);
        int64_t ts = item(rep, 7 + 4 * i), tr = item(rep, 8 + 4 * i);
        struct sl_gov_headers *h = &t->hdr;
        if (s->rpm && (!h->limit_requests || s->rpm - rs < h->remaining_requests)) {
            h->limit_requests = s->rpm;
            h->remaining_requests = s->rpm - rs > 0 ? s->rpm - rs : 0;
            h->reset_requests_ms = rr > 0 ? rr : 0;
        }
        if (s->tpm && (!h->limit_tokens || s->tpm - ts < h->remaining_tokens)) {
            h->limit_tokens = s->tpm;
            h->remaining_tokens = s->tpm - ts > 0 ? s->tpm - ts : 0;
            h->reset_tokens_ms = tr > 0 ? tr : 0;
        }
    }
    memset(ref, 0, sizeof(*ref));
    t->n = 0;
    t->active = 0;
    if (reason != SL_GOV_OK) {
        size_t i = (size_t)item(rep, 1) - 1;
        const struct sl_gov_scope *s = &scopes[i < n ? i : 0];
        ref->reason = reason;
        ref->limit = item(rep, 2);
        ref->used = item(rep, 3);
        ref->retry_after_ms = item(rep, 4);
        snprintf(ref->scope, sizeof(ref->scope), "%s", s->name);
        if (reason == SL_GOV_BUDGET) {
            memcpy(ref->currency, s->budget.currency, 4);
            int64_t end = window_end(s->budget.window, start[i < n ? i : 0]);
            ref->retry_after_ms = end ? end - ask->now_ms : 0;
        }
        freeReplyObject(rep);
        return reason;
    }
    freeReplyObject(rep);
    for (size_t i = 0; i < n; i++) {
        struct sl_gov_hold *h = &t->h[t->n++];
        memset(h, 0, sizeof(*h));
        snprintf(h->name, sizeof(h->name), "%s", scopes[i].name);
        h->counted = scopes[i].concurrency > 0;
        h->tokens = scopes[i].tpm ? ask->tokens : 0;
        h->token_sec = ask->now_ms / 1000;
        if (scopes[i].budget.limit_micros) {
            h->budgeted = 1;
            h->reserved = cost[i];
            h->window_start = start[i];
            h->window = scopes[i].budget.window;
            h->limit_micros = scopes[i].budget.limit_micros;
            memcpy(h->currency, scopes[i].budget.currency, 4);
        }
    }
    t->active = 1;
    return SL_GOV_OK;
}

int sl_gov_redis_settle(struct sl_gov_redis *r, const struct sl_gov_ticket *t,
                        const struct sl_gov_spend *s, const int64_t *cost, int64_t *spent_after,
                        char *err, size_t errlen)
{
    struct args *a = calloc(1, sizeof(*a));
    int64_t tokens = 0;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < t->n; i++)
        tokens = t->h[i].tokens > tokens ? t->h[i].tokens : tokens;
    a->n = 2;
    num(a, (int64_t)(t->n * NKEYS));
    for (size_t i = 0; i < t->n; i++)
        scope_keys(a, t->h[i].name, t->h[i].window, t->h[i].window_start,
                   t->h[i].budgeted ? t->h[i].currency : "");
    arg(a, t->id);
    num(a, t->n ? t->h[0].token_sec : 0);
    num(a, tokens ? s->tokens - tokens : 0);
    num(a, (int64_t)t->n);
    for (size_t i = 0; i < t->n; i++) {
        arg(a, t->h[i].counted ? "1" : "0");
        arg(a, t->h[i].tokens ? "1" : "0");
        arg(a, t->h[i].budgeted ? "1" : "0");
        num(a, cost[i]);
    }
    redisReply *rep = run(r, &r->settle, a->n, a->v, a->len, err, errlen);
    free(a);
    if (!rep)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        spent_after[i] = i < rep->elements ? item(rep, i) : -1;
    freeReplyObject(rep);
    return 0;
}
