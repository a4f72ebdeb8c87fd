/* kubernetes_share: the kubernetes_sd_configs provider as seen by the discovery manager - a subscription
 * to a shared watch (kubernetes.c), found in a process-wide registry.
 *
 * Shared across jobs (prometheus#10861, #13305): a watch (informers, store, thread) is keyed by the
 * canonical text of the whole kubernetes_sd_config block (sd_config_canonical with secrets: API server,
 * kubeconfig, auth identity and TLS, role, namespaces, selectors, attach_metadata; not the block's index).
 * Providers of identical blocks - in one job or in many - subscribe to one watch: one LIST+WATCH per
 * resource, the groups built once and handed to every subscriber (groups do not depend on the job). A
 * subscriber that joins a running watch gets the complete current state on the next loop pass. The last
 * unsubscribe stops and frees the watch.
 *
 * Locking: `reg_mu` guards the registry; it is held across a lookup and the subscribe (or the unsubscribe
 * and the unlink), so a starting provider never finds a watch that its last subscriber is leaving. Lock
 * order: reg_mu -> the watch's sub_mu -> the manager's lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/kubernetes_internal.h"
#include "util/log.h"

#define COMPONENT "sd/kubernetes"

typedef struct reg_entry {
    k8s_watch *w;
    struct reg_entry *next;
} reg_entry;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *registry;

static int k8s_start(sd_provider *p, char *err, size_t errlen)
{
    char *key = sd_config_canonical(p->cfg, true);
    if (!key) {
        snprintf(err, errlen, "kubernetes_sd_configs: cannot describe the block");
        return -1;
    }
    pthread_mutex_lock(&reg_mu);
    reg_entry *e = registry;
    while (e && strcmp(k8s_watch_key(e->w), key) != 0)
        e = e->next;
    bool shared = e != NULL;
    if (!e) {
        k8s_watch *w = k8s_watch_new(key, p->cfg, p->job, err, errlen);
        if (!w) {
            pthread_mutex_unlock(&reg_mu);
            free(key);
            return -1;
        }
        e = malloc(sizeof *e);
        if (!e)
            abort();
        e->w = w;
        e->next = registry;
        registry = e;
    }
    k8s_watch *w = e->w;
    size_t n_subs = k8s_watch_subscribe(w, p);
    p->impl = w;
    pthread_mutex_unlock(&reg_mu);
    free(key);
    k8s_watch_wakeup(w); /* the new subscriber gets the current state on the next pass */
    if (shared) {
        char c[16];
        snprintf(c, sizeof c, "%zu", n_subs);
        log_info(COMPONENT, "sharing an identical watch", "job", p->job, "provider", p->name, "with_job",
                 k8s_watch_job(w), "subscribers", c);
    }
    return 0;
}

/* Unsubscribes p; the last subscriber stops and frees the watch. */
static void k8s_stop(sd_provider *p)
{
    k8s_watch *w = p->impl;
    if (!w)
        return;
    pthread_mutex_lock(&reg_mu);
    bool last = k8s_watch_unsubscribe(w, p);
    if (last)
        for (reg_entry **pp = &registry; *pp; pp = &(*pp)->next)
            if ((*pp)->w == w) {
                reg_entry *e = *pp;
                *pp = e->next;
                free(e);
                break;
            }
    pthread_mutex_unlock(&reg_mu);
    p->impl = NULL;
    if (last)
        k8s_watch_free(w);
}

static void k8s_destroy(sd_provider *p)
{
    k8s_stop(p);
}

size_t k8s_watch_count(void)
{
    pthread_mutex_lock(&reg_mu);
    size_t n = 0;
    for (reg_entry *e = registry; e; e = e->next)
        n++;
    pthread_mutex_unlock(&reg_mu);
    return n;
}

const sd_provider_ops sd_kubernetes_ops = {
    .kind = "kubernetes",
    .start = k8s_start,
    .stop = k8s_stop,
    .destroy = k8s_destroy,
};
