/* Active health checks: a thread that probes the deployments of every group that asks
 * for it (groups[].health_check) and reports each outcome to the router, so a provider
 * that died is skipped before real traffic finds out, and one that came back is used. */
#ifndef SL_HEALTH_CHECK_H
#define SL_HEALTH_CHECK_H

struct sl_server;
struct sl_checker;

/* Starts the thread (it idles when no group has a health check). 0, or -1 with a log line. */
int sl_checker_start(struct sl_server *srv, struct sl_checker **out);

/* Stops and joins the thread. NULL is allowed. */
void sl_checker_stop(struct sl_checker *c);

#endif
