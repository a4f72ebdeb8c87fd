/* DNS SD: resolv.conf and search lists, answer decoding (hand-built messages), configuration, and the
 * provider against a real dnsmasq (record changes, disappearing records, server down, slow answers,
 * truncation -> TCP). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "dnsmasq_util.h"
#include "sd/sd_remote.h"
#include "sd_test_util.h"
#include "util/metrics.h"

/* ---- resolv.conf and NameList ---- */

Test(sd_dns_conf, resolv_conf_search_and_ndots)
{
    dns_resolv_conf rc;
    dns_resolv_conf_parse("# comment\nnameserver 10.0.0.1\ndomain old.example\nsearch a.example. b.example\n"
                          "options rotate ndots:2 timeout:1\n",
                          &rc);
    cr_assert_eq(rc.n_search, 2);
    cr_assert_str_eq(rc.search[0], "a.example");
    cr_assert_str_eq(rc.search[1], "b.example");
    cr_assert_eq(rc.ndots, 2);
    dns_resolv_conf_free(&rc);
    dns_resolv_conf_parse("search x.example\ndomain only.example\noptions ndots:40\n", &rc);
    cr_assert_eq(rc.n_search, 1); /* the last of domain/search wins */
    cr_assert_str_eq(rc.search[0], "only.example");
    cr_assert_eq(rc.ndots, 15);
    dns_resolv_conf_free(&rc);
    cr_assert_eq(dns_resolv_conf_read("/nonexistent/resolv.conf", &rc), -1);
    cr_assert_eq(rc.n_search, 0);
    cr_assert_eq(rc.ndots, 1);
}

static void check_list(const char *name, const char *conf, const char *const *want)
{
    dns_resolv_conf rc;
    dns_resolv_conf_parse(conf, &rc);
    size_t n;
    char **v = dns_name_list(name, &rc, &n);
    size_t k = 0;
    while (want[k])
        k++;
    cr_assert_eq(n, k, "%s: %zu names, want %zu", name, n, k);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(v[i], want[i]);
        free(v[i]);
    }
    free(v);
    dns_resolv_conf_free(&rc);
}

Test(sd_dns_conf, name_list_like_miekg)
{
    const char *conf = "search a.example b.example\n";
    check_list("web", conf, (const char *[]){"web.a.example.", "web.b.example.", "web.", NULL});
    check_list("_x._tcp.svc", conf,
               (const char *[]){"_x._tcp.svc.", "_x._tcp.svc.a.example.", "_x._tcp.svc.b.example.", NULL});
    check_list("fqdn.example.", conf, (const char *[]){"fqdn.example.", NULL});
    check_list("a.b", "search s\noptions ndots:2\n", (const char *[]){"a.b.s.", "a.b.", NULL});
    check_list("a.b.c", "search s\noptions ndots:2\n", (const char *[]){"a.b.c.", "a.b.c.s.", NULL});
    check_list("web", "", (const char *[]){"web.", NULL});
}

/* ---- answers ---- */

typedef struct msgb {
    unsigned char b[4096];
    size_t n;
} msgb;

static void put16(msgb *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)(v >> 8);
    m->b[m->n++] = (unsigned char)v;
}

static void put_name(msgb *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        m->b[m->n++] = (unsigned char)l;
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    m->b[m->n++] = 0;
}

static void header(msgb *m, int rcode, unsigned an)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, 0x8180 | (unsigned)rcode);
    put16(m, 1);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
    put_name(m, "q.example");
    put16(m, 33);
    put16(m, 1);
}

static void rr(msgb *m, unsigned type, const unsigned char *rdata, size_t rdlen)
{
    m->b[m->n++] = 0xc0; /* pointer to the question name */
    m->b[m->n++] = 12;
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    put16(m, (unsigned)rdlen);
    memcpy(m->b + m->n, rdata, rdlen);
    m->n += rdlen;
}

static size_t srv_rdata(unsigned char *out, unsigned port, const char *target)
{
    msgb t = {0};
    put16(&t, 10);
    put16(&t, 5);
    put16(&t, port);
    put_name(&t, target);
    memcpy(out, t.b, t.n);
    return t.n;
}

Test(sd_dns_answer, srv_mx_a_aaaa_cname_and_others)
{
    msgb m;
    header(&m, 0, 7);
    unsigned char rd[300];
    rr(&m, 33, rd, srv_rdata(rd, 9090, "web-1.example"));
    rr(&m, 1, (const unsigned char[]){10, 0, 0, 7}, 4);
    unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    rr(&m, 28, v6, 16);
    unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    rr(&m, 28, mapped, 16);
    msgb mx = {0};
    put16(&mx, 10);
    put_name(&mx, "mail.example");
    rr(&m, 15, mx.b, mx.n);
    rr(&m, 5, rd, srv_rdata(rd, 0, "x") - 6); /* CNAME: skipped */
    rr(&m, 16, (const unsigned char[]){3, 'a', 'b', 'c'}, 4); /* TXT: skipped with a warning */
    target_group g;
    target_group_init(&g, "q.example");
    char err[128];
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "q.example", DNS_SD_SRV, 80, &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 5);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), "web-1.example:9090");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_dns_srv_record_target"), "web-1.example.");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_dns_srv_record_port"), "9090");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_dns_name"), "q.example");
    cr_assert_null(labelset_get(&g.targets[0], "__meta_dns_mx_record_target"));
    cr_assert_str_eq(labelset_get(&g.targets[1], "__address__"), "10.0.0.7:80");
    cr_assert_null(labelset_get(&g.targets[1], "__meta_dns_srv_record_target"));
    cr_assert_str_eq(labelset_get(&g.targets[2], "__address__"), "[2001:db8::1]:80");
    cr_assert_str_eq(labelset_get(&g.targets[3], "__address__"), "192.0.2.1:80");
    cr_assert_str_eq(labelset_get(&g.targets[4], "__address__"), "mail.example:80");
    cr_assert_str_eq(labelset_get(&g.targets[4], "__meta_dns_mx_record_target"), "mail.example.");
    target_group_free(&g);
}

Test(sd_dns_answer, rcodes_and_malformed)
{
    msgb m;
    header(&m, 3, 0);
    target_group g;
    target_group_init(&g, "n");
    char err[128];
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_SRV, 0, &g, err, sizeof err), 3);
    header(&m, 2, 0);
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_SRV, 0, &g, err, sizeof err), 2);
    header(&m, 0, 0);
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_SRV, 0, &g, err, sizeof err), 0);
    cr_assert_eq(g.n_targets, 0);
    /* answer count larger than the message; truncated record data; bad A length; short header */
    header(&m, 0, 2);
    unsigned char rd[300];
    rr(&m, 33, rd, srv_rdata(rd, 1, "a"));
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_SRV, 0, &g, err, sizeof err), -1);
    header(&m, 0, 1);
    rr(&m, 1, (const unsigned char[]){1, 2, 3}, 3);
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_A, 1, &g, err, sizeof err), -1);
    cr_assert_eq(dns_answer_to_group(m.b, 5, "n", DNS_SD_A, 1, &g, err, sizeof err), -1);
    header(&m, 0, 1);
    rr(&m, 33, rd, srv_rdata(rd, 1, "abc"));
    cr_assert_eq(dns_answer_to_group(m.b, m.n - 3, "n", DNS_SD_SRV, 0, &g, err, sizeof err), -1);
    /* a compression loop */
    header(&m, 0, 1);
    size_t at = m.n;
    m.b[m.n++] = 0xc0;
    m.b[m.n++] = (unsigned char)at;
    put16(&m, 1);
    put16(&m, 1);
    put16(&m, 0);
    put16(&m, 0);
    put16(&m, 4);
    m.n += 4;
    cr_assert_eq(dns_answer_to_group(m.b, m.n, "n", DNS_SD_A, 1, &g, err, sizeof err), -1);
    target_group_free(&g);
}

Test(sd_dns_answer, ipv6_like_go)
{
    char s[64];
    unsigned char a[16] = {0};
    dns_format_ipv6(a, s, sizeof s);
    cr_assert_str_eq(s, "::");
    a[15] = 1;
    dns_format_ipv6(a, s, sizeof s);
    cr_assert_str_eq(s, "::1");
    unsigned char compat[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    dns_format_ipv6(compat, s, sizeof s);
    cr_assert_str_eq(s, "::102:304"); /* glibc would say ::1.2.3.4 */
    unsigned char two[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    dns_format_ipv6(two, s, sizeof s);
    cr_assert_str_eq(s, "2001:db8:0:1::1"); /* a single zero group is not compressed */
    unsigned char longest[16] = {0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    dns_format_ipv6(longest, s, sizeof s);
    cr_assert_str_eq(s, "2001:0:0:1::1"); /* the longest run wins */
    unsigned char tie[16] = {0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};
    dns_format_ipv6(tie, s, sizeof s);
    cr_assert_str_eq(s, "1::1:0:0:1:1"); /* the first of equal runs */
    char hp[80];
    sd_join_host_port("::1", 80, hp, sizeof hp);
    cr_assert_str_eq(hp, "[::1]:80");
}

/* ---- configuration ---- */

static lookout_config *load(const char *yaml, char *err, size_t errlen)
{
    return config_parse(yaml, strlen(yaml), "test.yml", err, errlen);
}

Test(sd_dns_config, defaults_and_errors)
{
    char err[512];
    lookout_config *c = load("scrape_configs:\n- job_name: j\n  dns_sd_configs:\n  - names: [_a._tcp.x]\n"
                             "  - names: [h]\n    type: aaaa\n    port: 9100\n    refresh_interval: 5s\n",
                             err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const scrape_config *sc = &c->scrape_configs[0];
    cr_assert_eq(sc->n_sd_configs, 2);
    cr_assert_eq(sc->sd_configs[0].kind, SD_DNS);
    cr_assert_eq(sc->sd_configs[0].u.dns.type, DNS_SD_SRV);
    cr_assert_eq(sc->sd_configs[0].u.dns.refresh_interval_ms, 30000);
    cr_assert_eq(sc->sd_configs[1].u.dns.type, DNS_SD_AAAA);
    cr_assert_eq(sc->sd_configs[1].u.dns.port, 9100);
    cr_assert_eq(sc->sd_configs[1].u.dns.refresh_interval_ms, 5000);
    cr_assert(!sd_config_equal(&sc->sd_configs[0], &sc->sd_configs[1]));
    cr_assert(sd_config_equal(&sc->sd_configs[0], &sc->sd_configs[0]));
    config_free(c);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"  - names: [a]\n    type: A\n", "a port is required in DNS-SD configs for all record types except SRV"},
        {"  - names: [a]\n    type: MX\n", "a port is required"},
        {"  - names: []\n", "DNS-SD config must contain at least one SRV record name"},
        {"  - type: SRV\n", "DNS-SD config must contain at least one SRV record name"},
        {"  - names: [a]\n    type: TXT\n", "invalid DNS-SD records type TXT"},
        {"  - names: [a]\n    port: 70000\n", "invalid port"},
        {"  - names: [a]\n    server: x\n", "field server not found"},
        {"  - names: [a]\n    refresh_interval: 1.5s\n", "refresh_interval"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char y[512];
        snprintf(y, sizeof y, "scrape_configs:\n- job_name: j\n  dns_sd_configs:\n%s", bad[i].yaml);
        c = load(y, err, sizeof err);
        cr_assert_null(c, "case %zu loaded", i);
        cr_assert(strstr(err, bad[i].want), "case %zu: %s", i, err);
        cr_assert(strstr(err, "test.yml:"), "case %zu: %s", i, err);
    }
}

/* ---- the provider against dnsmasq ---- */

typedef struct fixture {
    dnsmasq dm;
    recorder rec;
    sd_manager *mgr;
    lookout_config *cfg;
} fixture;

static fixture F;

static void fx_setup(void)
{
    memset(&F, 0, sizeof F);
    rec_init(&F.rec);
}

static void fx_teardown(void)
{
    if (F.mgr)
        sd_manager_free(F.mgr);
    if (F.cfg)
        config_free(F.cfg);
    dnsmasq_cleanup(&F.dm);
    rec_free(&F.rec);
    unsetenv("LOOKOUT_DNS_SERVERS");
}

/* CI runs on a fresh machine: install dnsmasq (the binary only, no system service) instead of skipping.
 * Unit tests run from the repository root (tests/run.sh, make check). */
static void need_dnsmasq(void)
{
    if (!dnsmasq_available()) {
        int rc = system("scripts/deps.sh dnsmasq-base >/dev/null 2>&1");
        cr_assert_eq(rc, 0, "dnsmasq missing and `scripts/deps.sh dnsmasq-base` failed (%d)", rc);
    }
    cr_assert(dnsmasq_available(), "/usr/sbin/dnsmasq is not executable after scripts/deps.sh dnsmasq-base");
}

static void point_at(int port)
{
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", port);
    setenv("LOOKOUT_DNS_SERVERS", s, 1);
}

static void run_config(const char *sd_block)
{
    char y[2048], err[512];
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: dns\n  dns_sd_configs:\n%s", sd_block);
    F.cfg = config_parse(y, strlen(y), "t.yml", err, sizeof err);
    cr_assert_not_null(F.cfg, "%s", err);
    F.mgr = sd_manager_new(rec_sync, &F.rec, 50);
    cr_assert_eq(sd_manager_apply_config(F.mgr, F.cfg), 0);
}

static const labelset *find_target(const rec_call *c, const char *addr)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->groups[i].n_targets; k++) {
            const char *a = labelset_get(&c->groups[i].targets[k], "__address__");
            if (a && !strcmp(a, addr))
                return &c->groups[i].targets[k];
        }
    return NULL;
}

TestSuite(sd_dns_live, .init = fx_setup, .fini = fx_teardown, .timeout = 30);

Test(sd_dns_live, srv_records_labels_and_restart_changes)
{
    need_dnsmasq();
    const char *srv[] = {"--srv-host=_web._tcp.lookout.test,web-1.lookout.test,8080",
                         "--srv-host=_web._tcp.lookout.test,web-2.lookout.test,8081", NULL};
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "", srv), 0);
    point_at(F.dm.port);
    run_config("  - names: ['_web._tcp.lookout.test.']\n    refresh_interval: 200ms\n");
    const rec_call *c = rec_wait_for(&F.rec, "dns", pred_has, "web-2.lookout.test:8081", 5000);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 2);
    const labelset *t = find_target(c, "web-1.lookout.test:8080");
    cr_assert_not_null(t);
    cr_assert_str_eq(labelset_get(t, "__meta_dns_name"), "_web._tcp.lookout.test.");
    cr_assert_str_eq(labelset_get(t, "__meta_dns_srv_record_target"), "web-1.lookout.test.");
    cr_assert_str_eq(labelset_get(t, "__meta_dns_srv_record_port"), "8080");
    cr_assert_not_null(call_group(c, "_web._tcp.lookout.test."));

    /* SRV records are command-line options: restart dnsmasq with one replaced, on the same port */
    dnsmasq_stop(&F.dm);
    const char *srv2[] = {"--srv-host=_web._tcp.lookout.test,web-1.lookout.test,8080",
                          "--srv-host=_web._tcp.lookout.test,web-3.lookout.test,9000", NULL};
    cr_assert_eq(dnsmasq_start(&F.dm, F.dm.port, NULL, srv2), 0);
    c = rec_wait_for(&F.rec, "dns", pred_has, "web-3.lookout.test:9000", 5000);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 2);
    cr_assert(!call_has_address(c, "web-2.lookout.test:8081"));
}

Test(sd_dns_live, a_records_follow_hosts_file_and_nxdomain_empties)
{
    need_dnsmasq();
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "10.1.0.1 app.lookout.test\n10.1.0.2 app.lookout.test\n", NULL), 0);
    point_at(F.dm.port);
    run_config("  - names: ['app.lookout.test.']\n    type: A\n    port: 9100\n    refresh_interval: 200ms\n");
    const rec_call *c = rec_wait_for(&F.rec, "dns", pred_has, "10.1.0.2:9100", 5000);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 2);
    cr_assert_null(labelset_get(find_target(c, "10.1.0.1:9100"), "__meta_dns_srv_record_port"));

    dnsmasq_write_hosts(&F.dm, "10.1.0.3 app.lookout.test\n");
    dnsmasq_reload(&F.dm);
    c = rec_wait_for(&F.rec, "dns", pred_has, "10.1.0.3:9100", 5000);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 1);

    /* the name disappears: NXDOMAIN (dnsmasq is authoritative for .test) empties the group */
    dnsmasq_write_hosts(&F.dm, "10.1.0.9 other.lookout.test\n");
    dnsmasq_reload(&F.dm);
    c = rec_wait_for(&F.rec, "dns", pred_lacks, "10.1.0.3:9100", 5000);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 0);
}

static bool pred_ipv6(const rec_call *c, void *arg)
{
    (void)arg;
    return call_targets(c) == 2;
}

Test(sd_dns_live, aaaa_and_mx)
{
    need_dnsmasq();
    const char *mx[] = {"--mx-host=mail.lookout.test,mx1.lookout.test,10", NULL};
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "2001:db8::5 v6.lookout.test\n::ffff:192.0.2.9 v6.lookout.test\n", mx),
                 0);
    point_at(F.dm.port);
    run_config("  - names: ['v6.lookout.test.']\n    type: AAAA\n    port: 443\n    refresh_interval: 200ms\n"
               "  - names: ['mail.lookout.test.']\n    type: MX\n    port: 25\n    refresh_interval: 200ms\n");
    const rec_call *c = rec_wait_for(&F.rec, "dns", pred_has, "mx1.lookout.test:25", 5000);
    cr_assert_not_null(c);
    c = rec_wait_for(&F.rec, "dns", pred_has, "[2001:db8::5]:443", 5000);
    cr_assert_not_null(c);
    (void)pred_ipv6;
    const labelset *t = find_target(c, "mx1.lookout.test:25");
    cr_assert_not_null(t);
    cr_assert_str_eq(labelset_get(t, "__meta_dns_mx_record_target"), "mx1.lookout.test.");
    cr_assert_str_eq(labelset_get(t, "__meta_dns_name"), "mail.lookout.test.");
    if (!find_target(c, "192.0.2.9:443"))
        cr_log_info("dnsmasq did not serve the IPv4-mapped AAAA record; covered by sd_dns_answer");
}

static bool pred_all_40(const rec_call *c, void *arg)
{
    (void)arg;
    return call_targets(c) == 40;
}

Test(sd_dns_live, truncated_udp_answer_is_retried_over_tcp)
{
    need_dnsmasq();
    const char *opts[42];
    char buf[40][128];
    for (int i = 0; i < 40; i++) {
        snprintf(buf[i], sizeof buf[i], "--srv-host=_big._tcp.lookout.test,instance-with-a-long-name-%02d.lookout.test,%d",
                 i, 10000 + i);
        opts[i] = buf[i];
    }
    opts[40] = "--edns-packet-max=512";
    opts[41] = NULL;
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "", opts), 0);
    point_at(F.dm.port);
    run_config("  - names: ['_big._tcp.lookout.test.']\n    refresh_interval: 1s\n");
    const rec_call *c = rec_wait_for(&F.rec, "dns", pred_all_40, NULL, 5000);
    cr_assert_not_null(c, "40 SRV records do not fit 512 bytes: expected the TCP retry to return them all");
}

Test(sd_dns_live, server_down_keeps_targets_and_counts_failures)
{
    need_dnsmasq();
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "10.2.0.1 keep.lookout.test\n", NULL), 0);
    point_at(F.dm.port);
    metric_family *fails = metric_family_get("lookout_sd_dns_lookup_failures_total", METRIC_COUNTER,
                                             "The number of DNS-SD lookup failures.", 0, NULL);
    run_config("  - names: ['keep.lookout.test.']\n    type: A\n    port: 80\n    refresh_interval: 100ms\n");
    cr_assert_not_null(rec_wait_for(&F.rec, "dns", pred_has, "10.2.0.1:80", 5000));
    double before = metric_value(fails, NULL);
    size_t calls = rec_count(&F.rec, "dns");
    dnsmasq_stop(&F.dm); /* refused: ICMP port unreachable */
    int64_t end = sd_now_mono_ms() + 3000;
    while (metric_value(fails, NULL) < before + 2 && sd_now_mono_ms() < end)
        sleep_ms(20);
    cr_assert_geq(metric_value(fails, NULL), before + 2, "failures were not counted");
    const rec_call *c = rec_last(&F.rec, "dns");
    cr_assert(call_has_address(c, "10.2.0.1:80"), "targets must survive a DNS outage");
    cr_assert_eq(rec_count(&F.rec, "dns"), calls, "a failed lookup must not produce an update");
    /* back: same answer, nothing to sync; a changed answer goes through */
    cr_assert_eq(dnsmasq_start(&F.dm, F.dm.port, "10.2.0.2 keep.lookout.test\n", NULL), 0);
    cr_assert_not_null(rec_wait_for(&F.rec, "dns", pred_has, "10.2.0.2:80", 5000));
}

/* A UDP proxy that answers after a delay (or never), in front of dnsmasq. */
typedef struct slow_proxy {
    int fd, port, upstream;
    atomic_int delay_ms; /* < 0: drop */
    atomic_int busy;     /* a query read and not yet answered or dropped */
    atomic_bool stop;
    pthread_t th;
} slow_proxy;

static void *proxy_run(void *arg)
{
    slow_proxy *sp = arg;
    unsigned char buf[4096];
    while (!atomic_load(&sp->stop)) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        struct pollfd pfd = {.fd = sp->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t n = recvfrom(sp->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        /* busy before delay_ms is read: a test that sets delay_ms < 0 and then sees busy 0 knows no query
         * read with the old delay is still to be forwarded */
        atomic_store(&sp->busy, 1);
        int d = atomic_load(&sp->delay_ms);
        if (d < 0) {
            atomic_store(&sp->busy, 0);
            continue;
        }
        sleep_ms(d);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in up = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t)sp->upstream)};
        sendto(u, buf, (size_t)n, 0, (struct sockaddr *)&up, sizeof up);
        struct pollfd upfd = {.fd = u, .events = POLLIN};
        if (poll(&upfd, 1, 1000) > 0) {
            ssize_t m = recv(u, buf, sizeof buf, 0);
            if (m > 0)
                sendto(sp->fd, buf, (size_t)m, 0, (struct sockaddr *)&from, fl);
        }
        close(u);
        atomic_store(&sp->busy, 0);
    }
    return NULL;
}

static void proxy_start(slow_proxy *sp, int upstream, int delay_ms)
{
    memset(sp, 0, sizeof *sp);
    sp->upstream = upstream;
    atomic_store(&sp->delay_ms, delay_ms);
    sp->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    cr_assert_eq(bind(sp->fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(sp->fd, (struct sockaddr *)&a, &l);
    sp->port = ntohs(a.sin_port);
    pthread_create(&sp->th, NULL, proxy_run, sp);
}

static void proxy_stop(slow_proxy *sp)
{
    atomic_store(&sp->stop, true);
    pthread_join(sp->th, NULL);
    close(sp->fd);
}

Test(sd_dns_live, slow_answers_within_timeout_count_and_silence_keeps_targets)
{
    need_dnsmasq();
    cr_assert_eq(dnsmasq_start(&F.dm, 0, "10.3.0.1 slow.lookout.test\n", NULL), 0);
    slow_proxy sp;
    proxy_start(&sp, F.dm.port, 700);
    point_at(sp.port);
    run_config("  - names: ['slow.lookout.test.']\n    type: A\n    port: 80\n    refresh_interval: 300ms\n");
    int64_t t0 = sd_now_mono_ms();
    cr_assert_not_null(rec_wait_for(&F.rec, "dns", pred_has, "10.3.0.1:80", 5000));
    cr_assert_geq(sd_now_mono_ms() - t0, 600, "the answer came through the slow proxy");
    /* no answer at all: after the 2 s timeout the lookup fails and the targets stay */
    metric_family *fails = metric_family_get("lookout_sd_dns_lookup_failures_total", METRIC_COUNTER,
                                             "The number of DNS-SD lookup failures.", 0, NULL);
    atomic_store(&sp.delay_ms, -1);
    /* a query the proxy already holds still gets the old answer: wait until it is answered (bounded),
     * not a fixed second (a proxy thread late past it forwarded the query after the hosts were emptied) */
    for (int64_t end = sd_now_mono_ms() + 5000; atomic_load(&sp.busy) && sd_now_mono_ms() < end;)
        sleep_ms(10);
    cr_assert_eq(atomic_load(&sp.busy), 0, "the proxy still holds a query after 5 s");
    dnsmasq_write_hosts(&F.dm, "");
    dnsmasq_reload(&F.dm);
    size_t calls = rec_count(&F.rec, "dns");
    double before = metric_value(fails, NULL);
    /* a lookup that is never answered fails at its timeout (counted), within a generous bound */
    for (int64_t end = sd_now_mono_ms() + 10000; metric_value(fails, NULL) < before + 1 && sd_now_mono_ms() < end;)
        sleep_ms(20);
    cr_assert_geq(metric_value(fails, NULL), before + 1, "an unanswered lookup was not counted as a failure");
    cr_assert_eq(rec_count(&F.rec, "dns"), calls, "a failed lookup must not produce an update");
    cr_assert(call_has_address(rec_last(&F.rec, "dns"), "10.3.0.1:80"));
    sd_manager_free(F.mgr); /* stopping while a query is outstanding returns promptly */
    F.mgr = NULL;
    proxy_stop(&sp);
}

Test(sd_dns_live, bad_server_env_is_a_start_error)
{
    setenv("LOOKOUT_DNS_SERVERS", "not-an-address", 1);
    char y[] = "scrape_configs:\n- job_name: dns\n  dns_sd_configs:\n  - names: [a.]\n";
    char err[512];
    F.cfg = config_parse(y, strlen(y), "t.yml", err, sizeof err);
    cr_assert_not_null(F.cfg);
    sd_provider *p = sd_provider_create(&F.cfg->scrape_configs[0].sd_configs[0], "dns", err, sizeof err);
    cr_assert_not_null(p);
    cr_assert_eq(p->ops->start(p, err, sizeof err), -1);
    cr_assert(strstr(err, "LOOKOUT_DNS_SERVERS"), "%s", err);
    sd_provider_free(p);
}
