/* sd_remote: the pure pieces of the dns, consul and http providers, shared with their unit tests. */
#ifndef LOOKOUT_SD_SD_REMOTE_H
#define LOOKOUT_SD_SD_REMOTE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd/sd_internal.h"

/* ---- dns.c ---- */

/* What Prometheus (miekg/dns ClientConfigFromFile) takes from resolv.conf. */
typedef struct dns_resolv_conf {
    char **search; /* without trailing dot */
    size_t n_search;
    int ndots; /* default 1, at most 15 */
} dns_resolv_conf;

/* Parses resolv.conf text ("domain" and "search" replace the list, "options ndots:N"). */
void dns_resolv_conf_parse(const char *text, dns_resolv_conf *out);
/* Reads a file; a missing file gives the defaults and returns -1. */
int dns_resolv_conf_read(const char *path, dns_resolv_conf *out);
void dns_resolv_conf_free(dns_resolv_conf *rc);

/* The fully-qualified names to try for `name`, in order (miekg/dns ClientConfig.NameList). Caller frees
 * each and the array. */
char **dns_name_list(const char *name, const dns_resolv_conf *rc, size_t *n);

/* Parses a DNS response. Returns the RCODE (0..15), or -1 with err for a malformed message. When the
 * RCODE is 0, answer records become targets of g (which the caller has initialised with source = name):
 * SRV, MX, A, AAAA as Prometheus' dns.go does; CNAME skipped; others logged and skipped. */
int dns_answer_to_group(const unsigned char *msg, size_t len, const char *name, dns_sd_type type, int port,
                        target_group *g, char *err, size_t errlen);

/* Go's net.IP.String for a 16-byte address: IPv4-mapped as dotted quad, RFC 5952 otherwise. */
void dns_format_ipv6(const unsigned char addr[16], char *out, size_t outlen);
/* Go's net.JoinHostPort(host, port). */
void sd_join_host_port(const char *host, int port, char *out, size_t outlen);

/* Path of resolv.conf (tests may point it elsewhere before starting a provider). */
extern const char *sd_dns_resolv_conf_path;

/* ---- consul.c ---- */

/* One catalog service (name -> tags). */
typedef struct consul_catalog_entry {
    char *name;
    char **tags;
    size_t n_tags;
} consul_catalog_entry;

/* Parses /v1/catalog/services. Returns 0 or -1 with err. */
int consul_parse_catalog(const char *body, size_t len, consul_catalog_entry **out, size_t *n, char *err,
                         size_t errlen);
void consul_catalog_free(consul_catalog_entry *v, size_t n);
/* Parses /v1/health/service/NAME into one group (source = service name), labels as Prometheus sets them.
 * Returns 0 or -1 with err. g is an initialised plain group (its source kept); with targets it becomes a
 * frozen view on success (sd_internal.h's sd_gb_freeze: read it, free it with target_group_free). */
int consul_parse_health(const char *body, size_t len, const char *service, const char *datacenter,
                        const char *tag_separator, target_group *g, char *err, size_t errlen);
/* Reads Config.Datacenter of /v1/agent/self; malloc'd, or NULL with err. */
char *consul_parse_agent_datacenter(const char *body, size_t len, char *err, size_t errlen);
/* Prometheus' strutil.SanitizeLabelName: every character outside [a-zA-Z0-9_] becomes '_'. */
void sd_sanitize_label_name(const char *in, char *out, size_t outlen);

/* ---- http.c ---- */

/* Validates an HTTP SD response (status, Content-Type, body) and returns its groups that have targets,
 * with sources "URL:INDEX" (INDEX: position in the list, empty groups counted) and __meta_url. Returns 0
 * or -1 with err. */
int http_sd_parse_response(const char *url, long status, const char *content_type, const char *body,
                           size_t len, target_group **out, size_t *n, char *err, size_t errlen);

#endif
