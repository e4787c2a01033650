# Turns run.sh's raw result lines into markdown tables (POSIX awk; mawk works).
# Figures are medians over the rounds; "added" is path minus direct within the same round,
# then the median of those differences. Variables: conns, rates, streams, sconns, hold, delay.

function kv(start,    i, eq) {
    delete F
    for (i = start; i <= NF; i++) {
        eq = index($i, "=")
        if (eq > 0)
            F[substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
}

function sortn(a, n,    i, j, t) { # insertion sort of a[1..n]
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--)
            a[j + 1] = a[j]
        a[j + 1] = t
    }
}

function med_of(a, n) {
    if (n == 0) return ""
    sortn(a, n)
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}

# Median over rounds of V[path,test,key]; sets LO and HI.
function med(path, test, key,    r, n, a) {
    n = 0
    for (r = 1; r <= R; r++)
        if ((path, test, key, r) in V)
            a[++n] = V[path, test, key, r] + 0
    if (n == 0) { LO = HI = ""; return "" }
    sortn(a, n)
    LO = a[1]; HI = a[n]
    return med_of(a, n)
}

# Median over rounds of path minus direct.
function added(path, test, key,    r, n, a) {
    n = 0
    for (r = 1; r <= R; r++)
        if ((path, test, key, r) in V && ("direct", test, key, r) in V)
            a[++n] = V[path, test, key, r] - V["direct", test, key, r]
    if (n == 0) { LO = HI = ""; return "" }
    sortn(a, n)
    LO = a[1]; HI = a[n]
    return med_of(a, n)
}

function f0(x) { return x == "" ? "n/a" : sprintf("%.0f", x) }
function f1(x) { return x == "" ? "n/a" : sprintf("%.1f", x) }
function f2(x) { return x == "" ? "n/a" : sprintf("%.2f", x) }
function rng0() { return LO == "" ? "" : sprintf(" [%.0f–%.0f]", LO, HI) }
function mb(kb) { return kb == "" ? "n/a" : sprintf("%.1f MB", kb / 1024) }
function verdict(ok) { return ok ? "**pass**" : "**FAIL**" }

$1 ~ /^round=/ {
    kv(1)
    r = F["round"] + 0; p = F["path"]; t = F["test"]
    if (r > R) R = r
    for (k in F)
        if (k != "round" && k != "path" && k != "test" && k != "mode")
            V[p, t, k, r] = F[k]
    n = F["ok"] + F["non200"]
    if (n > 0 && ("cpu_ns" in F))
        V[p, t, "cpu_us", r] = F["cpu_ns"] / 1000 / n
    next
}
$1 == "mem" {
    kv(2)
    for (k in F)
        M[F["path"], F["phase"], k] = F[k]
    next
}
$1 == "wrk" {
    kv(2)
    W[F["path"]] = F["rps"]
    next
}

END {
    np = split("direct nginx sluice", P, " ")
    nr = split(rates, RT, " ")

    print ""
    print "### Non-stream throughput (closed loop, " conns " keep-alive connections)"
    print ""
    print "| path | req/s | % of direct | latency p50 / p99 (µs) | proxy CPU µs/req | wrk req/s (cross-check) | errors | other CPU % |"
    print "|---|---|---|---|---|---|---|---|"
    d = med("direct", "closed", "rps")
    for (i = 1; i <= np; i++) {
        p = P[i]
        x = med(p, "closed", "rps"); xr = rng0()
        if (p == "nginx") tn = x
        if (p == "sluice") ts = x
        cpu = p == "direct" ? "–" : f1(med(p, "closed", "cpu_us"))
        printf "| %s | %s%s | %s | %s / %s | %s | %s | %s | %s |\n", p, f0(x), xr,
            (d > 0) ? sprintf("%.0f%%", 100 * x / d) : "n/a",
            f0(med(p, "closed", "lat_p50")), f0(med(p, "closed", "lat_p99")), cpu,
            (p in W) ? sprintf("%.0f", W[p]) : "–",
            f0(med(p, "closed", "errors") + med(p, "closed", "non200")), f0(med(p, "closed", "foreign_pct"))
    }

    for (j = 1; j <= nr; j++) {
        t = "open" RT[j]
        print ""
        print "### Non-stream latency at a fixed " RT[j] " req/s (open loop; µs from the time each request was due)"
        print ""
        print "| path | achieved req/s | p50 | p99 | p99.9 | max | added p50 | added p99 | proxy CPU µs/req | errors | other CPU % |"
        print "|---|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= np; i++) {
            p = P[i]
            a50 = p == "direct" ? "–" : f0(added(p, t, "lat_p50")) rng0()
            a99 = p == "direct" ? "–" : f0(added(p, t, "lat_p99")) rng0()
            cpu = p == "direct" ? "–" : f1(med(p, t, "cpu_us"))
            printf "| %s | %s | %s%s | ", p, f0(med(p, t, "achieved_rps")), f0(med(p, t, "lat_p50")), rng0()
            printf "%s%s | %s | %s | %s | %s | %s | %s | %s |\n", f0(med(p, t, "lat_p99")), rng0(),
                f0(med(p, t, "lat_p999")), f0(med(p, t, "lat_max")), a50, a99, cpu,
                f0(med(p, t, "errors") + med(p, t, "non200")), f0(med(p, t, "foreign_pct"))
        }
    }

    print ""
    print "### Stream: " streams " streams of 20 one-word chunks, " delay " ms apart, " sconns " at a time (µs)"
    print ""
    print "Chunk delay = the time the client read a chunk minus the time `sluice sim` wrote it (`@sim:stamp`)."
    print ""
    print "| path | streams complete | TTFB p50 | TTFB p99 | chunk delay p50 | p99 | p99.9 | max | added p50 | added p99 | arrival gap p50 | chunks | other CPU % |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= np; i++) {
        p = P[i]
        a50 = p == "direct" ? "–" : f0(added(p, "stream", "delay_p50"))
        a99 = p == "direct" ? "–" : f0(added(p, "stream", "delay_p99"))
        printf "| %s | %s/%s | %s | %s | %s%s | ", p, f0(med(p, "stream", "streams_ok")),
            f0(med(p, "stream", "streams")), f0(med(p, "stream", "ttfb_p50")),
            f0(med(p, "stream", "ttfb_p99")), f0(med(p, "stream", "delay_p50")), rng0()
        printf "%s%s | %s | %s | %s | %s | %s | %s | %s |\n", f0(med(p, "stream", "delay_p99")), rng0(),
            f0(med(p, "stream", "delay_p999")), f0(med(p, "stream", "delay_max")), a50, a99,
            f0(med(p, "stream", "gap_p50")), f0(med(p, "stream", "chunks")), f0(med(p, "stream", "foreign_pct"))
    }

    print ""
    print "### Memory of the proxy process (nginx: master + worker)"
    print ""
    print "| process | idle after start (VmRSS) | peak during the rounds (VmHWM) | VmRSS holding " hold " streams (peak sampled) | VmHWM after the hold | streams: got 200 / still open at end | VmRSS 2 s after the hold |"
    print "|---|---|---|---|---|---|---|"
    split("nginx sluice", Q, " ")
    for (i = 1; i <= 2; i++) {
        p = Q[i]
        printf "| %s | %s | %s | %s | %s | %s / %s | %s |\n", p, mb(M[p, "idle", "rss_kb"]),
            mb(M[p, "after_load", "hwm_kb"]), mb(M[p, "hold", "rss_kb"]), mb(M[p, "hold", "hwm_kb"]),
            (p, "hold", "hdr200") in M ? M[p, "hold", "hdr200"] : "n/a",
            (p, "hold", "open_at_end") in M ? M[p, "hold", "open_at_end"] : "n/a",
            mb(M[p, "after_hold", "rss_kb"])
    }

    print ""
    print "### Targets"
    print ""
    print "| target | measured | result |"
    print "|---|---|---|"
    for (j = 1; j <= nr; j++) {
        t = "open" RT[j]
        sn = added("sluice", t, "lat_p50"); nn = added("nginx", t, "lat_p50")
        lim = 1.5 * (nn > 0 ? nn : 0)
        printf "| added p50 at %s req/s ≤ 1.5× nginx's | sluice %s µs, nginx %s µs (limit %s µs; ratio %s) | %s |\n",
            RT[j], f0(sn), f0(nn), f0(lim), (nn > 0) ? sprintf("%.2f×", sn / nn) : "n/a", verdict(sn != "" && sn <= lim)
        sn = added("sluice", t, "lat_p99"); nn = added("nginx", t, "lat_p99")
        printf "| added p99 at %s req/s ≤ nginx's | sluice %s µs, nginx %s µs | %s |\n",
            RT[j], f0(sn), f0(nn), verdict(sn != "" && sn <= nn)
    }
    printf "| throughput ≥ 80%% of nginx's | sluice %s req/s = %s of nginx's %s | %s |\n", f0(ts),
        (tn > 0) ? sprintf("%.0f%%", 100 * ts / tn) : "n/a", f0(tn), verdict(tn > 0 && ts >= 0.8 * tn)
    sa = added("sluice", "stream", "delay_p50"); sabs = med("sluice", "stream", "delay_p50")
    printf "| stream chunk delay p50 ≤ 0.2 ms (added by sluice) | %s µs added (%s µs end to end, direct %s µs) | %s |\n",
        f0(sa), f0(sabs), f0(med("direct", "stream", "delay_p50")), verdict(sa != "" && sa <= 200)
    sm = med("sluice", "stream", "delay_max")
    printf "| no chunk waits for the next (%s ms gap) | sluice chunk delay p99 %s µs, max %s µs | %s |\n", delay,
        f0(med("sluice", "stream", "delay_p99")), f0(sm), verdict(sm != "" && sm < delay * 1000)
    ri = M["sluice", "idle", "rss_kb"]
    printf "| RSS idle < 20 MB | %s | %s |\n", mb(ri), verdict(ri != "" && ri < 20 * 1024)
    rh = M["sluice", "hold", "rss_kb"]; hh = M["sluice", "hold", "hwm_kb"]
    held = M["sluice", "hold", "open_at_end"] + 0
    printf "| RSS < 64 MB with %s streams | VmRSS %s (VmHWM %s), %s streams held | %s |\n", hold, mb(rh),
        mb(hh), held, verdict(hh != "" && hh < 64 * 1024 && held >= hold)

    n = 0; mx = 0
    for (k in V) {
        split(k, parts, SUBSEP)
        if (parts[3] == "foreign_pct") { fa[++n] = V[k] + 0; if (V[k] + 0 > mx) mx = V[k] + 0 }
    }
    print ""
    printf "Other processes on the machine used a median %s%% of its CPUs during the measurements (max %s%%; \"other CPU %%\" columns, non-idle time from /proc/stat minus the benchmark's own processes).\n", f0(med_of(fa, n)), f0(mx)
}
