/* main: command line only. Flags follow Prometheus conventions (--flag=value or --flag value).
 *   lookout [run] [flags]            run the monitor
 *   lookout check-config [--web.config.file=F] FILE...   validate configuration files
 *   lookout version | --version      print the version
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/web_config.h"
#include "runtime.h"
#include "scrape/target.h"
#include "util/duration.h"
#include "util/log.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lookout [run] [flags]\n"
            "       lookout check-config [--web.config.file=FILE] [FILE...]\n"
            "       lookout version\n"
            "\n"
            "lookout is a pull-based exception monitor: it discovers instances with Prometheus service\n"
            "discovery, scrapes the exceptions they export in the Periskop format, merges and stores them.\n"
            "\n"
            "Flags:\n"
            "  --config.file=PATH           configuration file (Prometheus or Periskop format).\n"
            "                               Without it lookout runs an embedded configuration that\n"
            "                               scrapes its own exceptions.\n"
            "  --web.listen-address=ADDR    address to serve the UI and APIs on (default \":7777\").\n"
            "  --storage.path=DIR           directory for the embedded database (default \"data\").\n"
            "  --log.level=LEVEL            debug, info, warn or error (default \"info\").\n"
            "  --web.config.file=PATH       web configuration file (Prometheus exporter-toolkit format):\n"
            "                               tls_server_config (HTTPS only), basic_auth_users (every\n"
            "                               endpoint then needs credentials), http_server_config.headers.\n"
            "                               Re-read on reload (SIGHUP, POST /-/reload): TLS settings apply\n"
            "                               to new connections, TLS may be switched on or off. HTTP/2 is\n"
            "                               not served (http_server_config.http2 is ignored).\n"
            "  --web.cors.origin=REGEX      origins (fully anchored regex, e.g. 'https?://ui\\.example\\.com')\n"
            "                               allowed to make cross-site requests; other cross-site writes\n"
            "                               are refused with 403 (default: none).\n"
            "  --web.enable-lifecycle       enable POST /-/reload and POST /-/quit.\n"
            "  --scrape.curl-only           scrape everything through libcurl; without it plain-http\n"
            "                               targets with a numeric address use a built-in HTTP/1.1\n"
            "                               client (same requests, results and errors, less CPU).\n"
            "  --web.enable-push            accept pushed exceptions: POST /errors (Periskop clients'\n"
            "                               push_to_gateway) and POST /api/v1/push/{job} (also config\n"
            "                               push.enabled).\n"
            "  --web.external-url=URL       the URL under which lookout is reached (links in alerts and\n"
            "                               their generatorURL; default http://<listen address> plus the\n"
            "                               route prefix); its origin also counts as lookout's own for the\n"
            "                               cross-site check, its path is the default route prefix.\n"
            "  --web.route-prefix=PATH      prefix of every web endpoint (UI, static files, APIs, /-/healthy,\n"
            "                               /-/ready, /metrics): /PATH/api/v1/errors; / and /PATH redirect\n"
            "                               to /PATH/. Defaults to the path of --web.external-url.\n"
            "  --rules.alert.resend-delay=DURATION\n"
            "                               how often active alerts are re-sent to Alertmanager\n"
            "                               (default 1m).\n"
            "  --alertmanager.notification-queue-capacity=N\n"
            "                               alerts waiting to be sent at most (default 10000).\n"
            "  --web.max-connections=N      maximum number of simultaneous connections across all\n"
            "                               listeners (default 512); more are refused at accept.\n"
            "  --web.max-connections-per-client=N\n"
            "                               simultaneous connections from one client address (default\n"
            "                               128); more from that address are refused at accept.\n"
            "  --web.read-timeout=DURATION  Maximum duration before timing out read of the request, and\n"
            "                               closing idle connections (default 5m; whole seconds): a\n"
            "                               request's headers and body must arrive within it, and a\n"
            "                               keep-alive connection waits that long for its next request.\n"
            "  --web.read-header-timeout=DURATION\n"
            "                               time a connection has to send a request's complete headers,\n"
            "                               in all, from accept or from the request line of a later\n"
            "                               request on a keep-alive connection (default 10s; whole\n"
            "                               seconds, at most --web.read-timeout); then it is closed.\n"
            "  --web.slow-handler-threads=N threads answering requests whose cost grows with the data\n"
            "                               (dumps, /api/v1/errors, /metrics, /api/v1/targets, /targets)\n"
            "                               apart from the rest (default 2).\n"
            "  --web.slow-handler-queue=N   such requests waiting for those threads at most (default 64);\n"
            "                               more are answered 503 with Retry-After: 1.\n"
            "  --web.push.max-bytes-in-flight=SIZE\n"
            "                               push bodies being received at once per push endpoint, by\n"
            "                               Content-Length (default 32MiB); more are answered 503.\n"
            "  --help                       show this help.\n"
            "  --version                    show the version.\n"
            "\n"
            "Signals: SIGHUP reloads the configuration; SIGINT/SIGTERM stop lookout.\n"
            "\n"
            "Environment (testing and split-horizon aids):\n"
            "  LOOKOUT_DNS_SERVERS=IP:PORT[,IP:PORT...]  name servers for dns_sd_configs instead of\n"
            "                               those of /etc/resolv.conf.\n"
            "  LOOKOUT_K8S_SA_DIR=DIR       service account directory for in-cluster Kubernetes discovery\n"
            "                               (default /var/run/secrets/kubernetes.io/serviceaccount).\n");
}

static const char *flag_value(int argc, char **argv, int *i, const char *name);

/* A count flag within [lo, hi]: 0, or -1 after saying what is wrong. */
static int flag_count(const char *v, const char *name, long long lo, long long hi, long long *out)
{
    char *end;
    long long c = strtoll(v, &end, 10);
    if (!*v || *end || c < lo || c > hi) {
        fprintf(stderr, "lookout: invalid %s %s (expected an integer from %lld to %lld)\n", name, v, lo, hi);
        return -1;
    }
    *out = c;
    return 0;
}

static int check_config(int argc, char **argv)
{
    int failed = 0, files = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if ((v = flag_value(argc, argv, &i, "--web.config.file")) ||
            (v = flag_value(argc, argv, &i, "-web.config.file"))) {
            /* Like promtool check web-config: the file, its certificates, the bcrypt hashes. */
            char err[1024];
            web_config *wc = web_config_load(v, err, sizeof err);
            if (!wc) {
                printf("%s\n", err);
                failed = 1;
            } else {
                printf("%s: SUCCESS\n", v);
                web_config_free(wc);
            }
            files++;
            continue;
        }
        files++;
        char err[1024];
        lookout_config *cfg = config_load(argv[i], err, sizeof err);
        if (!cfg) {
            printf("%s\n", err);
            failed = 1;
            continue;
        }
        for (size_t w = 0; w < cfg->n_warnings; w++)
            printf("%s: warning: %s\n", argv[i], cfg->warnings[w].message);
        /* promtool also builds every static target: one that Prometheus could not create (e.g. no port
         * and a scheme other than http/https) fails the check. */
        bool bad = false;
        for (size_t j = 0; j < cfg->n_scrape_configs && !bad; j++) {
            config_pos pos = {0};
            if (target_check_static(&cfg->scrape_configs[j], &pos, err, sizeof err) != 0) {
                printf("%s:%d:%d: job %s: %s\n", argv[i], pos.line, pos.column, cfg->scrape_configs[j].job_name, err);
                bad = true;
            }
        }
        if (bad) {
            failed = 1;
            config_free(cfg);
            continue;
        }
        printf("%s: SUCCESS\n", argv[i]);
        config_free(cfg);
    }
    if (files == 0) {
        fprintf(stderr, "check-config: at least one FILE (or --web.config.file=FILE) is required\n");
        return 2;
    }
    return failed;
}

/* Matches --name=value or --name value; advances *i when the value is the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc) {
        (*i)++;
        return argv[*i];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    runtime_options opts = {.config_file = NULL, .listen_address = LOOKOUT_DEFAULT_LISTEN_ADDRESS, .storage_path = LOOKOUT_DEFAULT_STORAGE_PATH,
                            .enable_lifecycle = false};
    int argi = 1;
    if (argi < argc && strcmp(argv[argi], "check-config") == 0)
        return check_config(argc - argi - 1, argv + argi + 1);
    if (argi < argc && strcmp(argv[argi], "version") == 0) {
        printf("lookout, version %s\n", LOOKOUT_VERSION);
        return 0;
    }
    if (argi < argc && strcmp(argv[argi], "run") == 0)
        argi++;
    for (int i = argi; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        long long n;
        /* Accept single-dash spellings too, like Go's flag package. */
        if (a[0] == '-' && a[1] != '-' && a[1] != '\0') {
            size_t n = strlen(a) + 2;
            char *norm = malloc(n); /* lives as long as the process, like argv */
            if (!norm)
                return 1;
            snprintf(norm, n, "-%s", a);
            argv[i] = norm;
            a = norm;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "--h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("lookout, version %s\n", LOOKOUT_VERSION);
            return 0;
        } else if ((v = flag_value(argc, argv, &i, "--config.file"))) {
            opts.config_file = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.listen-address"))) {
            opts.listen_address = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.config.file"))) {
            opts.web_config_file = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.cors.origin"))) {
            opts.cors_origin = v;
        } else if ((v = flag_value(argc, argv, &i, "--storage.path"))) {
            opts.storage_path = v;
        } else if ((v = flag_value(argc, argv, &i, "--log.level"))) {
            enum log_level lvl;
            if (log_parse_level(v, &lvl) != 0) {
                fprintf(stderr, "lookout: invalid --log.level %s (expected debug, info, warn or error)\n", v);
                return 2;
            }
            log_set_level(lvl);
        } else if ((v = flag_value(argc, argv, &i, "--web.external-url"))) {
            opts.external_url = v;
        } else if ((v = flag_value(argc, argv, &i, "--web.route-prefix"))) {
            opts.route_prefix = v;
        } else if ((v = flag_value(argc, argv, &i, "--rules.alert.resend-delay"))) {
            if (duration_parse(v, &opts.alert_resend_delay_ms) != 0 || opts.alert_resend_delay_ms <= 0) {
                fprintf(stderr, "lookout: invalid --rules.alert.resend-delay %s (expected a duration such as 1m)\n", v);
                return 2;
            }
        } else if ((v = flag_value(argc, argv, &i, "--alertmanager.notification-queue-capacity"))) {
            char *end;
            long long c = strtoll(v, &end, 10);
            if (*end || c <= 0 || c > 10000000) {
                fprintf(stderr, "lookout: invalid --alertmanager.notification-queue-capacity %s (expected a "
                                "positive integer)\n", v);
                return 2;
            }
            opts.notification_queue_capacity = (size_t)c;
        } else if ((v = flag_value(argc, argv, &i, "--web.max-connections"))) {
            if (flag_count(v, "--web.max-connections", 1, 1000000, &n) != 0)
                return 2;
            opts.max_connections = (unsigned)n;
        } else if ((v = flag_value(argc, argv, &i, "--web.max-connections-per-client"))) {
            if (flag_count(v, "--web.max-connections-per-client", 1, 1000000, &n) != 0)
                return 2;
            opts.max_connections_per_client = (unsigned)n;
        } else if ((v = flag_value(argc, argv, &i, "--web.read-header-timeout"))) {
            int64_t ms;
            if (duration_parse(v, &ms) != 0 || ms < 1000 || ms % 1000 || ms > 366 * 86400 * 1000LL) {
                fprintf(stderr, "lookout: invalid --web.read-header-timeout %s (expected whole seconds from 1s, "
                                "such as 10s)\n", v);
                return 2;
            }
            opts.read_header_timeout_s = (unsigned)(ms / 1000);
        } else if ((v = flag_value(argc, argv, &i, "--web.read-timeout"))) {
            int64_t ms;
            if (duration_parse(v, &ms) != 0 || ms < 1000 || ms % 1000 || ms > 366 * 86400 * 1000LL) {
                fprintf(stderr, "lookout: invalid --web.read-timeout %s (expected whole seconds from 1s, such as 5m)\n",
                        v);
                return 2;
            }
            opts.read_timeout_s = (unsigned)(ms / 1000);
        } else if ((v = flag_value(argc, argv, &i, "--web.slow-handler-threads"))) {
            if (flag_count(v, "--web.slow-handler-threads", 1, 256, &n) != 0)
                return 2;
            opts.slow_handler_threads = (unsigned)n;
        } else if ((v = flag_value(argc, argv, &i, "--web.slow-handler-queue"))) {
            if (flag_count(v, "--web.slow-handler-queue", 1, 1000000, &n) != 0)
                return 2;
            opts.slow_handler_queue = (size_t)n;
        } else if ((v = flag_value(argc, argv, &i, "--web.push.max-bytes-in-flight"))) {
            int64_t b;
            if (config_parse_bytes(v, &b) != 0 || b <= 0) {
                fprintf(stderr, "lookout: invalid --web.push.max-bytes-in-flight %s (expected a positive size such "
                                "as 32MiB)\n", v);
                return 2;
            }
            opts.push_max_bytes_in_flight = (size_t)b;
        } else if (strcmp(a, "--web.enable-lifecycle") == 0) {
            opts.enable_lifecycle = true;
        } else if (strcmp(a, "--web.enable-push") == 0) {
            opts.enable_push = true;
        } else if (strcmp(a, "--scrape.curl-only") == 0) {
            opts.scrape_curl_only = true;
        } else {
            fprintf(stderr, "lookout: unknown argument %s\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    return runtime_run(&opts);
}
