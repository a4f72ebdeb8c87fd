/* alert/notifier: alerts for new and regressed errors, sent to Alertmanager with its API v2
 * (POST {scheme}://{target}{path_prefix}/api/v2/alerts), the way Prometheus' notifier does.
 *
 * What alerts: every global.evaluation_interval the evaluator lists the store's unresolved errors (open
 * or regressed) whose last occurrence is within alerting.resolve_after and whose severity is at least
 * alerting.min_severity (error_relabel_configs decide severities and drop noise before that). An open
 * error fires alertname="NewException", a regressed one alertname="RegressedException". Labels:
 * alertname, job, aggregation_key, severity, the labels every label set seen for the error has in common,
 * and global.external_labels (the alert's own labels win). Annotations: class, message, total_count and
 * link (the error in the UI: --web.external-url + "/#/{job}/errors/{key}", also the generatorURL).
 * Active alerts are re-sent every --rules.alert.resend-delay with endsAt = now + 4 x max(evaluation
 * interval, resend delay) (Prometheus' ValidUntil); an alert that is no longer active (resolved in lookout,
 * or resolve_after without a new occurrence) is sent once with endsAt = now.
 *
 * Delivery: a bounded queue (--alertmanager.notification-queue-capacity; full: the oldest alerts are
 * dropped and counted); a sender thread posts batches of up to 256 alerts to every discovered Alertmanager,
 * retrying a failed post twice with backoff (250 ms, 500 ms) within the Alertmanager's timeout.
 * alerting.alert_relabel_configs apply to each alert's labels when it is queued (a drop: not queued).
 *
 * Discovery: the notifier's own sd_manager, one job per element of alerting.alertmanagers named
 * "config-0", "config-1", ... (Prometheus' notify discovery manager); each synced group set becomes that
 * set's Alertmanagers with Prometheus' AlertmanagerFromGroup semantics (__scheme__, __alerts_path__,
 * the set's relabel_configs, {__scheme__}://{__address__}{__alerts_path__}, deduplicated by URL). Metrics as Prometheus' notifier, lookout_ prefixed:
 * lookout_notifications_{sent,errors}_total{alertmanager}, lookout_notifications_dropped_total,
 * lookout_notifications_queue_{length,capacity}, lookout_notifications_alertmanagers_discovered.
 *
 * Threads: its own evaluator and sender; it only reads the store (store_list/store_get, the readers'
 * side), so an unreachable or slow Alertmanager never blocks scraping or the store writer. The discovery
 * manager's thread only takes the notifier's mutex to swap a set's Alertmanagers.
 * notifier_apply_config may be called from any thread (reload). */
#ifndef LOOKOUT_ALERT_NOTIFIER_H
#define LOOKOUT_ALERT_NOTIFIER_H
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/relabel.h"
#include "sd/sd.h"
#include "store/store.h"

typedef struct notifier notifier;

typedef struct notifier_options {
    const char *external_url; /* --web.external-url, without a trailing slash; "" when not given */
    int64_t resend_delay_ms;  /* --rules.alert.resend-delay; 0 -> 1m */
    size_t queue_capacity;    /* --alertmanager.notification-queue-capacity; 0 -> 10000 */
} notifier_options;

#define NOTIFIER_DEFAULT_RESEND_MS 60000
#define NOTIFIER_DEFAULT_QUEUE 10000
#define NOTIFIER_MAX_BATCH 256

/* Borrowed: st outlives the notifier. Nothing runs until notifier_start. */
notifier *notifier_new(store *st, const notifier_options *o);
/* Copies what it needs from cfg (alertmanagers, alerting.*, evaluation_interval, external labels). */
void notifier_apply_config(notifier *n, const lookout_config *cfg);
/* Starts the evaluator and sender threads; 0 or -1. */
int notifier_start(notifier *n);
/* Stops both threads (an in-flight post is aborted) and frees. NULL ok. */
void notifier_free(notifier *n);

/* __alerts_path__ as Prometheus computes it: path.Join("/", path_prefix, "/api/v2/alerts"). Caller frees. */
char *notifier_alerts_path(const char *path_prefix);
/* Prometheus' AlertmanagerFromGroup for one target group of an alertmanager config: each target's labels
 * over the group's, __scheme__ (scheme) and __alerts_path__ where discovery did not set them, the config's
 * relabel_configs (a drop counts in *dropped), then {__scheme__}://{__address__}{__alerts_path__},
 * appended to *urls (malloc'd, caller frees) unless already there. An __address__ with a "/" fails the
 * whole group: -1, nothing of it appended, err "\"...\" is not a valid hostname". */
int notifier_group_urls(const char *scheme, const char *alerts_path, const relabel_rule *rules, size_t n_rules,
                        const target_group *g, char ***urls, size_t *n_urls, size_t *dropped, char *err,
                        size_t errlen);

/* The UI link of an error: external_url + "/#/" + job + "/errors/" + key, URL-encoded (caller frees). */
char *notifier_error_link(const char *external_url, const char *job, const char *key);

#endif
