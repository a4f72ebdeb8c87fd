/* Unit tests for the configuration loader: one test per error class (asserting FILE:LINE:COLUMN and the
 * message), defaults, the Periskop format, durations in context, warnings, equality, and the examples. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

#define GOOD "tests/fixtures/config/good/"
#define BAD "tests/fixtures/config/bad/"

static char err[2048];

static lookout_config *load_ok(const char *path)
{
    err[0] = '\0';
    lookout_config *cfg = config_load(path, err, sizeof err);
    cr_assert_not_null(cfg, "%s should load, got: %s", path, err);
    return cfg;
}

static lookout_config *parse_ok(const char *yaml)
{
    err[0] = '\0';
    lookout_config *cfg = config_parse(yaml, strlen(yaml), "inline.yml", err, sizeof err);
    cr_assert_not_null(cfg, "should parse, got: %s", err);
    return cfg;
}

/* Loads a bad fixture and checks the error starts with FILE:POS: and contains msg. */
static void expect_bad(const char *name, const char *pos, const char *msg)
{
    char path[256], prefix[300];
    snprintf(path, sizeof path, BAD "%s", name);
    err[0] = '\0';
    lookout_config *cfg = config_load(path, err, sizeof err);
    cr_assert_null(cfg, "%s should fail", path);
    snprintf(prefix, sizeof prefix, "%s:%s: ", path, pos);
    cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "%s: expected prefix \"%s\", got \"%s\"", name, prefix, err);
    cr_assert(strstr(err, msg) != NULL, "%s: expected \"%s\" in \"%s\"", name, msg, err);
}

static bool has_warning(const lookout_config *cfg, const char *needle)
{
    for (size_t i = 0; i < cfg->n_warnings; i++)
        if (strstr(cfg->warnings[i].message, needle))
            return true;
    return false;
}

/* ---- error classes ---- */

Test(config_errors, invalid_yaml)
{
    expect_bad("invalid_yaml.yml", "4:1", "invalid YAML: did not find expected node content");
}
Test(config_errors, unknown_top_level_key)
{
    expect_bad("unknown_top.yml", "3:1", "field scrape_confgs not found in type config (expected one of: global, ");
}
Test(config_errors, unknown_scrape_config_key)
{
    expect_bad("unknown_field.yml", "3:5", "field scrape_intervall not found in type scrape_config (expected one of: job_name, ");
    cr_assert(strstr(err, ", or a service discovery block such as file_sd_configs)"), "%s", err);
}
Test(config_errors, wrong_type)
{
    expect_bad("wrong_type.yml", "2:3", "expected a list for scrape_configs, got a mapping");
}
Test(config_errors, top_level_not_a_mapping)
{
    expect_bad("top_list.yml", "1:1", "expected a mapping at the top level");
}
Test(config_errors, bad_duration)
{
    expect_bad("bad_duration.yml", "3:22", "invalid duration \"1.5m\" for scrape_interval (expected a duration such as");
}
Test(config_errors, negative_number)
{
    expect_bad("negative_number.yml", "3:19", "invalid value \"-1\" for target_limit (expected a non-negative integer)");
}
Test(config_errors, bad_bool)
{
    expect_bad("bad_bool.yml", "3:19", "invalid value \"maybe\" for honor_labels (expected a boolean: true or false)");
}
Test(config_errors, invalid_label_name)
{
    expect_bad("invalid_label_name.yml", "6:11", "\"bad-name\" is not a valid label name");
}
Test(config_errors, invalid_source_label)
{
    expect_bad("relabel_bad_source_label.yml", "4:25", "\"a-b\" is not a valid label name");
}
Test(config_errors, duplicate_job_name)
{
    expect_bad("duplicate_job.yml", "4:5", "found multiple scrape configs with job name \"a\" (first at line 2");
}
Test(config_errors, duplicate_key)
{
    expect_bad("duplicate_key.yml", "3:5", "field job_name already set in type scrape_config at line 2");
}
Test(config_errors, missing_job_name)
{
    expect_bad("missing_job_name.yml", "2:5", "job_name is empty");
}
Test(config_errors, timeout_greater_than_interval)
{
    expect_bad("timeout_gt_interval.yml", "4:21",
               "scrape timeout greater than scrape interval for scrape config with job name \"a\" (scrape_timeout 11s > "
               "scrape_interval 10s");
}
Test(config_errors, global_timeout_greater_than_interval)
{
    expect_bad("global_timeout.yml", "3:19", "global scrape timeout greater than scrape interval");
}

Test(config_errors, bad_regex)
{
    /* The second rule; the message itself comes from relabel_rule_prepare. */
    expect_bad("bad_regex.yml", "6:9", "relabel_configs[1]: error parsing regexp: missing closing )");
}
Test(config_errors, relabel_rule_invalid)
{
    expect_bad("relabel_hashmod_no_modulus.yml", "4:9", "relabel_configs[0]: ");
    cr_assert(strstr(err, "modulus"), "%s", err);
}
Test(config_errors, unknown_relabel_action)
{
    expect_bad("bad_relabel_action.yml", "4:17", "unknown relabel action \"frobnicate\" (expected replace, keep");
}
Test(config_errors, bad_proxy_url)
{
    expect_bad("bad_proxy_url.yml", "3:16", "invalid proxy_url \"http://proxy:port\": invalid port");
}
Test(config_errors, proxy_connect_header_without_proxy_url)
{
    expect_bad("proxy_header_without_url.yml", "4:7",
               "if proxy_connect_header is configured proxy_url must also be configured");
}
Test(config_errors, basic_auth_and_authorization)
{
    expect_bad("basic_and_authorization.yml", "6:7", "at most one of basic_auth, oauth2 & authorization must be configured");
}
Test(config_errors, password_and_password_file)
{
    expect_bad("password_and_file.yml", "4:7", "at most one of basic_auth password & password_file must be configured");
}
Test(config_errors, credentials_and_credentials_file)
{
    expect_bad("credentials_and_file.yml", "4:7",
               "at most one of authorization credentials & credentials_file must be configured");
}
Test(config_errors, authorization_type_basic)
{
    expect_bad("authorization_basic.yml", "4:7",
               "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
}
Test(config_errors, bearer_token_and_basic_auth)
{
    expect_bad("bearer_and_basic.yml", "2:5",
               "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured");
}
Test(config_errors, bearer_token_and_file)
{
    expect_bad("bearer_and_file.yml", "2:5", "at most one of bearer_token & bearer_token_file must be configured");
}
Test(config_errors, bearer_token_and_authorization)
{
    expect_bad("bearer_and_authorization.yml", "5:7",
               "authorization is not compatible with bearer_token & bearer_token_file");
}
Test(config_errors, tls_version)
{
    expect_bad("bad_tls_version.yml", "4:20", "unknown TLS version: TLS9 (expected TLS10, TLS11, TLS12 or TLS13)");
}
Test(config_errors, tls_cert_without_key)
{
    expect_bad("cert_without_key.yml", "4:7", "client cert file c.pem specified without client key file");
}
Test(config_errors, file_sd_pattern)
{
    expect_bad("bad_file_sd_pattern.yml", "4:31",
               "path name \"targets/*.txt\" is not valid for file discovery (expected a path ending in .json");
}
Test(config_errors, file_sd_without_files)
{
    expect_bad("file_sd_no_files.yml", "4:9", "file service discovery config must contain at least one path name");
}
Test(config_errors, null_sd_section)
{
    expect_bad("null_sd_section.yml", "4:7", "empty or null section in static_configs");
}
Test(config_errors, url_in_static_target)
{
    expect_bad("url_target.yml", "4:9", "\"http://x:1/metrics\" is not a valid hostname");
}
Test(config_errors, params_not_a_list)
{
    expect_bad("params_not_list.yml", "4:15", "expected a list of values for params.format, got a scalar");
}
Test(config_errors, body_size_limit)
{
    expect_bad("bad_body_size.yml", "3:22", "invalid body_size_limit \"10kB\" (expected a size such as 10MB");
}
Test(config_errors, storage_without_dsn)
{
    expect_bad("storage_no_dsn.yml", "2:3", "storage type postgres requires dsn");
}
Test(config_errors, storage_max_errors_per_job_zero)
{
    expect_bad("storage_max_errors_zero.yml", "3:23",
               "invalid max_errors_per_job 0 (expected an integer from 1 to 10000000)");
}
Test(config_errors, sample_limit_not_an_integer)
{
    expect_bad("sample_limit_not_int.yml", "3:19", "sample_limit");
}
Test(config_errors, storage_bad_type)
{
    expect_bad("storage_bad_type.yml", "2:9", "invalid storage type \"redis\" (expected sqlite, memory, postgres or mysql)");
}
Test(config_errors, periskop_duplicate_service)
{
    expect_bad("periskop_duplicate.yml", "4:5", "found multiple services with name \"a\" (first at line 2)");
}
Test(config_errors, periskop_unknown_field)
{
    expect_bad("periskop_unknown_field.yml", "5:7", "field interval not found in type scraper (expected one of: endpoint, "
                                                    "refresh_interval)");
}
Test(config_errors, periskop_mysql_without_dsn)
{
    expect_bad("periskop_mysql_no_dsn.yml", "2:3", "repository type mysql requires dsn");
}
Test(config_errors, invalid_utf8_label_value)
{
    /* libyaml rejects invalid UTF-8 before any value reaches lookout; the error still has a position. */
    const char *y = "global:\n  external_labels:\n    a: \"\xff\"\n";
    err[0] = '\0';
    cr_assert_null(config_parse(y, strlen(y), "u.yml", err, sizeof err));
    cr_assert(strstr(err, "u.yml:3:9: invalid YAML: invalid leading UTF-8 octet") == err, "%s", err);
}
Test(config_errors, missing_file)
{
    cr_assert_null(config_load(BAD "does-not-exist.yml", err, sizeof err));
    cr_assert(strstr(err, "does-not-exist.yml: cannot open configuration file: No such file"), "%s", err);
}

/* ---- defaults ---- */

Test(config, empty_file_is_valid)
{
    lookout_config *cfg = load_ok(GOOD "empty.yml");
    cr_assert_eq(cfg->n_scrape_configs, 0);
    cr_assert_eq(cfg->global.scrape_interval_ms, 60000);
    cr_assert_eq(cfg->global.scrape_timeout_ms, 10000);
    cr_assert_eq(cfg->storage.type, STORAGE_SQLITE);
    cr_assert_eq(cfg->n_warnings, 0);
    config_free(cfg);
    cfg = load_ok(GOOD "comments.yml");
    cr_assert_eq(cfg->n_scrape_configs, 0);
    config_free(cfg);
}

Test(config, defaults)
{
    lookout_config *cfg = load_ok(GOOD "minimal.yml");
    cr_assert_eq(cfg->n_scrape_configs, 1);
    cr_assert_eq(cfg->n_warnings, 0);
    const scrape_config *sc = &cfg->scrape_configs[0];
    cr_assert_str_eq(sc->job_name, "app");
    cr_assert_eq(sc->pos.line, 2);
    cr_assert_eq(sc->scrape_interval_ms, 60000);
    cr_assert_eq(sc->scrape_timeout_ms, 10000);
    cr_assert_str_eq(sc->metrics_path, "/-/exceptions");
    cr_assert_str_eq(sc->scheme, "http");
    cr_assert(!sc->honor_labels);
    cr_assert(sc->honor_timestamps);
    cr_assert(sc->http.follow_redirects);
    cr_assert(sc->http.enable_http2);
    cr_assert(!sc->http.has_basic_auth && !sc->http.has_authorization);
    cr_assert_eq(sc->body_size_limit, 0);
    cr_assert_eq(sc->n_sd_configs, 1);
    cr_assert_eq(sc->sd_configs[0].kind, SD_STATIC);
    cr_assert_str_eq(sc->sd_configs[0].u.static_sd.targets[0], "localhost:8080");
    cr_assert_eq(cfg->storage.type, STORAGE_SQLITE);
    cr_assert_eq(cfg->storage.retention_ms, 14LL * 86400 * 1000);
    cr_assert_eq(cfg->storage.samples_per_error, 100);
    cr_assert_eq(cfg->storage.max_errors_per_job, 10000);
    cr_assert_eq(sc->sample_limit, 0);
    cr_assert_eq(sc->target_limit, 0);
    cr_assert_null(cfg->storage.path);
    cr_assert(!cfg->periskop_format);
    cr_assert_eq(config_find_job(cfg, "app"), sc);
    cr_assert_null(config_find_job(cfg, "nope"));
    config_free(cfg);
}

Test(config, every_field)
{
    lookout_config *cfg = load_ok(GOOD "full.yml");
    cr_assert_eq(cfg->n_warnings, 0, "unexpected warning: %s", cfg->n_warnings ? cfg->warnings[0].message : "");
    cr_assert_eq(cfg->global.scrape_interval_ms, 30000);
    cr_assert_eq(cfg->global.scrape_timeout_ms, 20000);
    cr_assert_str_eq(labelset_get(&cfg->global.external_labels, "region"), "eu");
    cr_assert_str_eq(labelset_get(&cfg->global.external_labels, "replica"), "1");
    cr_assert_eq(cfg->storage.type, STORAGE_POSTGRES);
    cr_assert_str_eq(cfg->storage.dsn, "host=localhost dbname=lookout");
    cr_assert_eq(cfg->storage.retention_ms, 28LL * 86400 * 1000);
    cr_assert_eq(cfg->storage.samples_per_error, 25);
    cr_assert_eq(cfg->storage.max_errors_per_job, 500);

    const scrape_config *sc = config_find_job(cfg, "full");
    cr_assert_not_null(sc);
    cr_assert_eq(sc->scrape_interval_ms, 90000);
    cr_assert_eq(sc->scrape_timeout_ms, 45000);
    cr_assert_str_eq(sc->metrics_path, "errors"); /* as written; the URL adds the slash */
    cr_assert_str_eq(sc->scheme, "https");
    cr_assert_eq(sc->n_params, 2);
    cr_assert_str_eq(sc->params[0].name, "alpha");
    cr_assert_eq(sc->params[0].n_values, 2);
    cr_assert_str_eq(sc->params[0].values[1], "a2");
    cr_assert_str_eq(sc->params[1].name, "zeta");
    cr_assert(sc->honor_labels);
    cr_assert(!sc->honor_timestamps);
    cr_assert(sc->http.has_basic_auth);
    cr_assert_str_eq(sc->http.basic_auth_username, "user");
    cr_assert_str_eq(sc->http.basic_auth_password_file, GOOD "secrets/pw");
    cr_assert_str_eq(sc->http.tls.ca_file, "/etc/ca.pem");
    cr_assert_str_eq(sc->http.tls.cert_file, GOOD "certs/client.pem");
    cr_assert_str_eq(sc->http.tls.key_file, GOOD "certs/client.key");
    cr_assert_str_eq(sc->http.tls.server_name, "example.internal");
    cr_assert(sc->http.tls.insecure_skip_verify);
    cr_assert_str_eq(sc->http.tls.min_version, "TLS12");
    cr_assert_str_eq(sc->http.proxy_url, "http://proxy.internal:3128");
    cr_assert(!sc->http.follow_redirects);
    cr_assert(!sc->http.enable_http2);
    cr_assert_eq(sc->body_size_limit, 10 * 1024 * 1024);
    cr_assert_eq(sc->target_limit, 50);
    cr_assert_eq(sc->sample_limit, 100);
    cr_assert_eq(sc->keep_dropped_targets, 7);

    cr_assert_eq(sc->n_relabel_configs, 3);
    const relabel_rule *r = &sc->relabel_configs[0];
    cr_assert_eq(r->n_source_labels, 2);
    cr_assert_str_eq(r->source_labels[1], "env");
    cr_assert_str_eq(r->separator, ",");
    cr_assert_str_eq(r->regex, "(.*):\\d+,(.*)");
    cr_assert_str_eq(r->target_label, "host");
    cr_assert_str_eq(r->replacement, "$1-$2");
    cr_assert_eq(r->action, RELABEL_REPLACE);
    cr_assert_eq(r->line, 44);
    cr_assert_eq(r->column, 9);
    cr_assert_eq(sc->relabel_configs[1].action, RELABEL_HASHMOD);
    cr_assert_eq(sc->relabel_configs[1].modulus, 4);
    cr_assert_eq(sc->relabel_configs[2].action, RELABEL_LABELDROP);
    cr_assert_eq(sc->n_metric_relabel_configs, 1);
    cr_assert_eq(sc->metric_relabel_configs[0].action, RELABEL_KEEP);

    cr_assert_eq(sc->n_sd_configs, 4);
    cr_assert_eq(sc->sd_configs[0].kind, SD_STATIC);
    cr_assert_eq(sc->sd_configs[0].index, 0);
    cr_assert_eq(sc->sd_configs[0].u.static_sd.n_targets, 2);
    cr_assert_str_eq(labelset_get(&sc->sd_configs[0].u.static_sd.labels, "env"), "prod");
    cr_assert_eq(sc->sd_configs[1].kind, SD_STATIC);
    cr_assert_eq(sc->sd_configs[1].index, 1);
    cr_assert_eq(sc->sd_configs[2].kind, SD_FILE);
    cr_assert_eq(sc->sd_configs[2].index, 0);
    cr_assert_str_eq(sc->sd_configs[2].u.file.files[0], GOOD "sd/*.json");
    cr_assert_str_eq(sc->sd_configs[2].u.file.files[1], "/abs/targets.yaml");
    cr_assert_eq(sc->sd_configs[2].u.file.refresh_interval_ms, 300000);
    cr_assert_eq(sc->sd_configs[3].u.file.refresh_interval_ms, 30000);
    cr_assert_eq(sc->sd_configs[3].index, 1);

    /* Inherited global timeout (20s) above the job's interval (5s) becomes the interval. */
    const scrape_config *s2 = config_find_job(cfg, "short");
    cr_assert_eq(s2->scrape_interval_ms, 5000);
    cr_assert_eq(s2->scrape_timeout_ms, 5000);
    /* bearer_token is folded into authorization. */
    cr_assert(s2->http.has_authorization);
    cr_assert_str_eq(s2->http.authorization_type, "Bearer");
    cr_assert_str_eq(s2->http.authorization_credentials, "sekret");
    cr_assert_null(s2->http.authorization_credentials_file);
    config_free(cfg);
}

Test(config, durations_in_context)
{
    lookout_config *cfg = parse_ok("global:\n  scrape_interval: 1h30m\n"
                                   "scrape_configs:\n"
                                   "  - job_name: a\n    scrape_timeout: 500ms\n"
                                   "  - job_name: b\n    scrape_interval: 1d\n    scrape_timeout: 1h\n"
                                   "  - job_name: c\n    scrape_interval: 1w\n"
                                   "  - job_name: d\n    scrape_interval: 1y\n"
                                   "  - job_name: e\n    scrape_interval: 5s\n"
                                   "    file_sd_configs: [{files: [x.json], refresh_interval: 2m30s}]\n");
    cr_assert_eq(cfg->global.scrape_interval_ms, 5400000);
    cr_assert_eq(cfg->global.scrape_timeout_ms, 10000);
    cr_assert_eq(config_find_job(cfg, "a")->scrape_interval_ms, 5400000);
    cr_assert_eq(config_find_job(cfg, "a")->scrape_timeout_ms, 500);
    cr_assert_eq(config_find_job(cfg, "b")->scrape_interval_ms, 86400000);
    cr_assert_eq(config_find_job(cfg, "b")->scrape_timeout_ms, 3600000);
    cr_assert_eq(config_find_job(cfg, "c")->scrape_interval_ms, 7LL * 86400000);
    cr_assert_eq(config_find_job(cfg, "d")->scrape_interval_ms, 365LL * 86400000);
    /* Default global timeout 10s above a 5s interval: capped to 5s. */
    cr_assert_eq(config_find_job(cfg, "e")->scrape_timeout_ms, 5000);
    cr_assert_eq(config_find_job(cfg, "e")->sd_configs[0].u.file.refresh_interval_ms, 150000);
    cr_assert_str_eq(config_find_job(cfg, "e")->sd_configs[0].u.file.files[0], "x.json");
    config_free(cfg);
}

Test(config, metrics_path_and_body_size)
{
    lookout_config *cfg = parse_ok("scrape_configs:\n"
                                   "  - job_name: a\n    metrics_path: metrics\n    body_size_limit: 1.5KiB\n"
                                   "  - job_name: b\n    body_size_limit: 1GB512MB\n"
                                   "  - job_name: c\n    body_size_limit: 0\n");
    cr_assert_str_eq(config_find_job(cfg, "a")->metrics_path, "metrics"); /* as written, like Prometheus */
    cr_assert_eq(config_find_job(cfg, "a")->body_size_limit, 1536);
    cr_assert_eq(config_find_job(cfg, "b")->body_size_limit, 1536LL * 1024 * 1024);
    cr_assert_eq(config_find_job(cfg, "c")->body_size_limit, 0);
    config_free(cfg);
}

Test(config, relative_paths_use_config_directory)
{
    const char *y = "scrape_configs:\n  - job_name: a\n    bearer_token_file: tok\n"
                    "    file_sd_configs: [{files: [t/*.yml]}]\n";
    lookout_config *cfg = config_parse(y, strlen(y), "/etc/lookout/lookout.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->scrape_configs[0].http.authorization_credentials_file, "/etc/lookout/tok");
    cr_assert_str_eq(cfg->scrape_configs[0].sd_configs[0].u.file.files[0], "/etc/lookout/t/*.yml");
    config_free(cfg);
}

/* Prometheus joins with filepath.Join, which cleans: no "./" or ".." left in the path (and so in
 * __meta_filepath); a config in the current directory cleans too (its directory is "."); absolute paths
 * are left as written (config.JoinDir). */
Test(config, relative_paths_are_cleaned)
{
    const char *y = "scrape_configs:\n  - job_name: a\n    bearer_token_file: ./tok\n"
                    "    file_sd_configs: [{files: [./sd/a.json, sd/../sd/b.yaml, ../x/./*.yml, /abs/./c.json]}]\n";
    lookout_config *cfg = config_parse(y, strlen(y), "/etc/lookout/lookout.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_str_eq(cfg->scrape_configs[0].http.authorization_credentials_file, "/etc/lookout/tok");
    char **f = cfg->scrape_configs[0].sd_configs[0].u.file.files;
    cr_assert_str_eq(f[0], "/etc/lookout/sd/a.json");
    cr_assert_str_eq(f[1], "/etc/lookout/sd/b.yaml");
    cr_assert_str_eq(f[2], "/etc/x/*.yml");
    cr_assert_str_eq(f[3], "/abs/./c.json");
    config_free(cfg);
    cfg = config_parse(y, strlen(y), "lookout.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    f = cfg->scrape_configs[0].sd_configs[0].u.file.files;
    cr_assert_str_eq(f[0], "sd/a.json");
    cr_assert_str_eq(f[1], "sd/b.yaml");
    cr_assert_str_eq(f[2], "../x/*.yml");
    config_free(cfg);
}

Test(config, null_values_mean_default)
{
    lookout_config *cfg = parse_ok("global:\nstorage:\nscrape_configs:\n  - job_name: a\n    scrape_interval:\n"
                                   "    metrics_path: ~\n    static_configs:\n");
    cr_assert_eq(cfg->global.scrape_interval_ms, 60000);
    cr_assert_eq(cfg->scrape_configs[0].scrape_interval_ms, 60000);
    cr_assert_str_eq(cfg->scrape_configs[0].metrics_path, "/-/exceptions");
    cr_assert_eq(cfg->scrape_configs[0].n_sd_configs, 0);
    config_free(cfg);
}

/* ---- warnings ---- */

/* Prometheus 2.42 loads any scheme string and fails the targets at scrape time: so does lookout, with a
 * warning. An explicit '' stays '' (Prometheus scrapes "//host/path" and reports unsupported protocol
 * scheme ""); a missing or null scheme is http. */
Test(config, any_scheme_loads_with_a_warning)
{
    lookout_config *cfg = parse_ok("scrape_configs:\n  - job_name: a\n    scheme: ftp\n"
                                   "  - job_name: b\n    scheme: ''\n  - job_name: c\n    scheme: HTTPS\n"
                                   "  - job_name: d\n    scheme: ~\n  - job_name: e\n    scheme: \"a\\tb\"\n");
    cr_assert_str_eq(cfg->scrape_configs[0].scheme, "ftp");
    cr_assert_str_eq(cfg->scrape_configs[1].scheme, "");
    cr_assert_str_eq(cfg->scrape_configs[2].scheme, "HTTPS");
    cr_assert_str_eq(cfg->scrape_configs[3].scheme, "http");
    cr_assert_str_eq(cfg->scrape_configs[4].scheme, "a\tb");
    cr_assert_eq(cfg->n_warnings, 3);
    cr_assert_str_eq(cfg->warnings[0].message, "line 3, column 13: job a: scheme \"ftp\" is not http or https; its "
                                               "targets will be down (unsupported protocol scheme), as in Prometheus");
    cr_assert(has_warning(cfg, "job b: scheme \"\" is not http or https"));
    cr_assert(has_warning(cfg, "job e: scheme \"a\\tb\" is not http or https")); /* quoted as Go's %q */
    config_free(cfg);
}

Test(config, warnings_for_unused_sections_and_sd_kinds)
{
    lookout_config *cfg = load_ok(GOOD "warnings.yml");
    cr_assert(has_warning(cfg, "global.query_log_file is not used by lookout; ignored"));
    cr_assert(has_warning(cfg, "line 4, column 1: rule_files is not used by lookout; ignored"));
    cr_assert(has_warning(cfg, "line 15, column 5: job mixed: nomad_sd_configs"));
    cr_assert(!has_warning(cfg, "alerting"), "alerting is used now (alerts through Alertmanager)");
    cr_assert(has_warning(cfg, "remote_write is not used by lookout; ignored"));
    cr_assert(has_warning(cfg, "storage.tsdb is Prometheus' TSDB setting and is not used by lookout; ignored"));
    cr_assert(has_warning(cfg, "job mixed: nomad_sd_configs is not supported by lookout yet; its targets are ignored"));
    cr_assert(has_warning(cfg, "job mixed: ec2_sd_configs is not supported by lookout yet"));
    cr_assert(has_warning(cfg, "job oauth: oauth2 is not supported by lookout yet"));
    cr_assert_eq(cfg->n_warnings, 7);
    for (size_t i = 0; i < cfg->n_warnings; i++) {
        cr_assert(strncmp(cfg->warnings[i].message, "line ", 5) == 0, "%s", cfg->warnings[i].message);
        cr_assert_gt(cfg->warnings[i].pos.line, 0);
    }
    /* The job still runs with its other SD blocks. */
    const scrape_config *sc = config_find_job(cfg, "mixed");
    cr_assert_eq(sc->n_sd_configs, 1);
    cr_assert_eq(sc->sd_configs[0].kind, SD_STATIC);
    cr_assert_eq(cfg->storage.type, STORAGE_SQLITE);
    config_free(cfg);
}

/* ---- Periskop format ---- */

Test(config, periskop_format)
{
    lookout_config *cfg = load_ok(GOOD "periskop.yml");
    cr_assert(cfg->periskop_format);
    cr_assert_eq(cfg->storage.type, STORAGE_POSTGRES);
    cr_assert(strstr(cfg->storage.dsn, "dbname=gorm"));
    cr_assert_eq(cfg->n_scrape_configs, 2);
    const scrape_config *a = config_find_job(cfg, "mock-target");
    cr_assert_not_null(a);
    cr_assert_str_eq(a->metrics_path, "/errors");
    cr_assert_eq(a->scrape_interval_ms, 1500);
    cr_assert_eq(a->scrape_timeout_ms, 1500);
    cr_assert_str_eq(a->scheme, "http");
    cr_assert_eq(a->n_sd_configs, 1);
    cr_assert_eq(a->sd_configs[0].kind, SD_DNS);
    cr_assert_eq(a->sd_configs[0].u.dns.type, DNS_SD_A);
    cr_assert_eq(a->sd_configs[0].u.dns.port, 7778);
    cr_assert_eq(a->sd_configs[0].u.dns.refresh_interval_ms, 10000);
    cr_assert(!has_warning(cfg, "dns_sd_configs is not supported"));
    const scrape_config *b = config_find_job(cfg, "periskop");
    cr_assert_str_eq(b->metrics_path, "/errors");
    cr_assert_eq(b->scrape_interval_ms, 120000);
    cr_assert_eq(b->scrape_timeout_ms, 10000);
    cr_assert_eq(b->n_sd_configs, 1);
    cr_assert_str_eq(b->sd_configs[0].u.static_sd.targets[0], "localhost:7777");
    config_free(cfg);
}

Test(config, periskop_unknown_repository_is_memory)
{
    lookout_config *cfg = load_ok(GOOD "periskop_unknown_repo.yml");
    cr_assert(cfg->periskop_format);
    cr_assert_eq(cfg->storage.type, STORAGE_MEMORY);
    cr_assert(has_warning(cfg, "repository type \"redis\" is not memory, sqlite, mysql or postgres; using memory"));
    cr_assert(has_warning(cfg, "service a: scraper.refresh_interval is not set or zero; using 60 s"));
    cr_assert_eq(cfg->scrape_configs[0].scrape_interval_ms, 60000);
    cr_assert_eq(cfg->scrape_configs[0].scrape_timeout_ms, 10000);
    config_free(cfg);
}

/* ---- equality ---- */

Test(config, scrape_config_equal)
{
    lookout_config *a = load_ok(GOOD "full.yml");
    lookout_config *b = load_ok(GOOD "full.yml");
    for (size_t i = 0; i < a->n_scrape_configs; i++)
        cr_assert(scrape_config_equal(&a->scrape_configs[i], &b->scrape_configs[i]));
    cr_assert(!scrape_config_equal(&a->scrape_configs[0], &b->scrape_configs[1]));
    config_free(a);
    config_free(b);

    /* Positions (comments, blank lines) do not matter; any field does. */
    const char *base = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x:1]}]\n";
    const char *moved = "# c\n\nscrape_configs:\n\n  - job_name: a\n    static_configs: [{targets: [x:1]}]\n";
    const char *variants[] = {
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x:2]}]\n",
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 30s\n    static_configs: [{targets: [x:1]}]\n",
        "scrape_configs:\n  - job_name: a\n    honor_labels: true\n    static_configs: [{targets: [x:1]}]\n",
        "scrape_configs:\n  - job_name: a\n    params: {a: [b]}\n    static_configs: [{targets: [x:1]}]\n",
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    static_configs: [{targets: [x:1]}]\n",
        "scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: labeldrop, regex: x}]\n"
        "    static_configs: [{targets: [x:1]}]\n",
        "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [x:1], labels: {a: b}}]\n",
    };
    lookout_config *x = parse_ok(base);
    lookout_config *y = parse_ok(moved);
    cr_assert(scrape_config_equal(&x->scrape_configs[0], &y->scrape_configs[0]));
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        lookout_config *v = parse_ok(variants[i]);
        cr_assert(!scrape_config_equal(&x->scrape_configs[0], &v->scrape_configs[0]), "variant %zu", i);
        config_free(v);
    }
    config_free(x);
    config_free(y);
}

Test(config, sd_config_equal)
{
    lookout_config *a = parse_ok("scrape_configs:\n  - job_name: a\n"
                                 "    static_configs: [{targets: [x:1]}]\n"
                                 "    file_sd_configs: [{files: [a.json]}, {files: [a.json], refresh_interval: 1m}]\n");
    lookout_config *b = parse_ok("scrape_configs:\n  - job_name: b\n    scrape_interval: 5s\n"
                                 "    file_sd_configs: [{files: [a.json], refresh_interval: 5m}]\n"
                                 "    static_configs: [{targets: [x:1]}]\n");
    const sd_config *as = a->scrape_configs[0].sd_configs, *bs = b->scrape_configs[0].sd_configs;
    cr_assert(sd_config_equal(&as[0], &bs[0]));  /* static, same targets */
    cr_assert(sd_config_equal(&as[1], &bs[1]));  /* file, explicit 5m == default */
    cr_assert(!sd_config_equal(&as[2], &bs[1])); /* different refresh */
    cr_assert(!sd_config_equal(&as[0], &bs[1])); /* different kinds */
    config_free(a);
    config_free(b);
}

/* ---- defaults and examples ---- */

Test(config, default_config)
{
    lookout_config *cfg = config_default("127.0.0.1:7777");
    cr_assert_eq(cfg->n_scrape_configs, 1);
    const scrape_config *sc = config_find_job(cfg, "lookout");
    cr_assert_not_null(sc);
    cr_assert_eq(sc->scrape_interval_ms, 15000);
    cr_assert_eq(sc->scrape_timeout_ms, 10000);
    cr_assert_str_eq(sc->metrics_path, "/-/exceptions");
    cr_assert_str_eq(sc->scheme, "http");
    cr_assert(sc->honor_timestamps && sc->http.follow_redirects && sc->http.enable_http2);
    cr_assert_eq(sc->n_sd_configs, 1);
    cr_assert_eq(sc->sd_configs[0].kind, SD_STATIC);
    cr_assert_str_eq(sc->sd_configs[0].u.static_sd.targets[0], "127.0.0.1:7777");
    cr_assert_eq(cfg->storage.type, STORAGE_SQLITE);
    /* The same job written in YAML is equal (reload from default to file keeps the job). */
    lookout_config *y = parse_ok("scrape_configs:\n  - job_name: lookout\n    scrape_interval: 15s\n"
                                 "    static_configs: [{targets: ['127.0.0.1:7777']}]\n");
    cr_assert(scrape_config_equal(sc, &y->scrape_configs[0]));
    config_free(y);
    config_free(cfg);
}

Test(config, examples_load_cleanly)
{
    lookout_config *cfg = load_ok("config/examples/lookout.yml");
    cr_assert_eq(cfg->n_warnings, 0);
    cr_assert_not_null(config_find_job(cfg, "lookout"));
    const scrape_config *ex = config_find_job(cfg, "example");
    cr_assert_str_eq(ex->metrics_path, "/-/exceptions");
    cr_assert_str_eq(ex->sd_configs[0].u.static_sd.targets[0], "localhost:7778");
    cr_assert_eq(ex->sample_limit, 5000);
    cr_assert_eq(ex->target_limit, 100);
    config_free(cfg);

    cfg = load_ok("config/examples/prometheus-style.yml");
    cr_assert(has_warning(cfg, "rule_files is not used by lookout"));
    cr_assert_eq(cfg->n_warnings, 1);
    cr_assert_eq(config_find_job(cfg, "api")->n_relabel_configs, 3);
    cr_assert_str_eq(config_find_job(cfg, "api")->sd_configs[0].u.file.files[0], "config/examples/targets/api-*.json");
    config_free(cfg);

    cfg = load_ok("config/examples/periskop.yml");
    cr_assert(cfg->periskop_format);
    cr_assert_eq(cfg->storage.type, STORAGE_SQLITE);
    cr_assert_eq(cfg->n_scrape_configs, 2);
    config_free(cfg);
}

/* Every SD kind's lifecycle lives in config/: a copy equals its original, has the same canonical text and
 * frees cleanly; the canonical text hides secrets unless asked and is pinned for one block (persisted SD
 * cache ids are digests of it: a change here invalidates every cache once). */
Test(config, sd_block_copy_equal_canonical_for_every_kind)
{
    lookout_config *cfg = parse_ok("scrape_configs:\n"
                                   "  - job_name: a\n"
                                   "    static_configs: [{targets: ['h:1'], labels: {x: '1'}}]\n"
                                   "    file_sd_configs: [{files: ['/t/f*.json'], refresh_interval: 30s}]\n"
                                   "    dns_sd_configs: [{names: ['a.example.org'], type: A, port: 9090}]\n"
                                   "    consul_sd_configs: [{server: 'c:8500', token: tok3n, services: [s1],\n"
                                   "                         basic_auth: {username: u, password: pw}}]\n"
                                   "    http_sd_configs: [{url: 'http://sd/x', authorization: {credentials: cr3d}}]\n"
                                   "    kubernetes_sd_configs: [{role: pod, api_server: 'https://k:6443',\n"
                                   "                             bearer_token: btok,\n"
                                   "                             selectors: [{role: pod, label: app=x}]}]\n");
    const scrape_config *sc = &cfg->scrape_configs[0];
    cr_assert_eq(sc->n_sd_configs, 6);
    for (size_t i = 0; i < sc->n_sd_configs; i++) {
        const sd_config *o = &sc->sd_configs[i];
        sd_config c;
        sd_config_copy(&c, o);
        cr_assert(sd_config_equal(&c, o), "block %zu", i);
        cr_assert_eq(c.index, o->index);
        for (int s = 0; s < 2; s++) {
            char *a = sd_config_canonical(o, s), *b = sd_config_canonical(&c, s);
            cr_assert_not_null(a);
            cr_assert_str_eq(a, b);
            if (!s)
                for (const char *secret = "tok3n"; secret; secret = NULL)
                    cr_assert_null(strstr(a, secret));
            free(a);
            free(b);
        }
        sd_config_release(&c);
    }
    char *http = sd_config_canonical(&sc->sd_configs[5], false); /* table order: ..., kubernetes, http */
    cr_assert_str_eq(http, "kind=15:http_sd_configs;url=11:http://sd/x;refresh_ms=60000;basic=0;user=-;pass=-;"
                           "pass_file=-;authz=1;authz_type=6:Bearer;authz_cred=3:set;authz_file=-;ca_file=-;"
                           "cert_file=-;key_file=-;server_name=-;ca=-;cert=-;key=-;insecure=0;min_version=-;"
                           "proxy=-;redirects=1;http2=1;");
    free(http);
    char *consul = sd_config_canonical(&sc->sd_configs[3], false), *k8s = sd_config_canonical(&sc->sd_configs[4], false);
    cr_assert_null(strstr(consul, "pw"));
    cr_assert_null(strstr(k8s, "btok"));
    free(consul);
    free(k8s);
    char *k8s_full = sd_config_canonical(&sc->sd_configs[4], true);
    cr_assert_not_null(strstr(k8s_full, "authz_cred=4:btok;"));
    free(k8s_full);
    config_free(cfg);
}

/* The one destructor of http_client_config: everything freed, the struct zeroed, and a copy is deep. */
Test(config, http_client_config_copy_and_release)
{
    http_client_config a;
    http_client_config_init(&a);
    cr_assert(a.follow_redirects && a.enable_http2);
    a.has_basic_auth = true;
    a.basic_auth_username = strdup("u");
    a.basic_auth_password = strdup("pw");
    a.tls.key = strdup("-----BEGIN KEY-----");
    http_client_config b;
    http_client_config_copy(&b, &a);
    cr_assert(http_client_config_equal(&a, &b));
    cr_assert_neq(a.basic_auth_password, b.basic_auth_password);
    http_client_config_release(&a);
    cr_assert_null(a.basic_auth_password);
    cr_assert(!a.has_basic_auth && !a.follow_redirects);
    cr_assert_str_eq(b.basic_auth_password, "pw");
    cr_assert_str_eq(b.tls.key, "-----BEGIN KEY-----");
    http_client_config_release(&b);
}

/* error_relabel_configs: the relabel_configs validation and positions, in a scrape_config, the push
 * section and a Periskop service, plus the static __severity__ check. */
Test(config_errors, error_relabel_static_severity)
{
    expect_bad("error_relabel_bad_severity.yml", "4:9",
               "error_relabel_configs[0]: invalid __severity__ replacement \"critical\" (expected info, warning or "
               "error)");
}
Test(config_errors, error_relabel_unknown_action_in_push)
{
    expect_bad("error_relabel_bad_action.yml", "5:15", "unknown relabel action \"silence\" (expected replace, keep");
}
Test(config_errors, error_relabel_bad_regex_in_periskop_service)
{
    expect_bad("error_relabel_bad_regex.yml", "9:9", "error_relabel_configs[0]: ");
}
Test(config, error_relabel_configs_parsed_everywhere)
{
    lookout_config *cfg = parse_ok("scrape_configs:\n"
                                   "  - job_name: api\n"
                                   "    error_relabel_configs:\n"
                                   "      - source_labels: [__aggregation_key__]\n"
                                   "        regex: '(.*)@[0-9a-f]+'\n"
                                   "        target_label: __aggregation_key__\n"
                                   "      - source_labels: [__class__]\n"
                                   "        regex: 'Timeout.*'\n"
                                   "        target_label: __severity__\n"
                                   "        replacement: warning\n"
                                   "      - source_labels: [__class__]\n"
                                   "        regex: '(.*)'\n"
                                   "        target_label: __severity__\n"
                                   "        replacement: $1\n"
                                   "    static_configs: [{targets: ['a:1']}]\n"
                                   "push:\n"
                                   "  error_relabel_configs: [{source_labels: [__message__], regex: '.*canceled.*', action: drop}]\n");
    cr_assert_eq(cfg->scrape_configs[0].n_error_relabel_configs, 3);
    cr_assert_str_eq(cfg->scrape_configs[0].error_relabel_configs[1].replacement, "warning");
    cr_assert_eq(cfg->push.n_error_relabel_configs, 1);
    cr_assert_eq(cfg->push.error_relabel_configs[0].action, RELABEL_DROP);
    config_free(cfg);
}

/* alerting: Prometheus' section plus resolve_after and min_severity; errors at FILE:LINE:COL. */
Test(config, alerting_section)
{
    lookout_config *cfg = parse_ok("global: {evaluation_interval: 5s}\n"
                                   "alerting:\n"
                                   "  resolve_after: 30m\n"
                                   "  min_severity: error\n"
                                   "  alertmanagers:\n"
                                   "    - scheme: https\n"
                                   "      path_prefix: /am\n"
                                   "      timeout: 3s\n"
                                   "      api_version: v2\n"
                                   "      basic_auth: {username: u, password: p}\n"
                                   "      static_configs: [{targets: ['am-1:9093', 'am-2:9093']}]\n"
                                   "      file_sd_configs: [{files: [am.json]}]\n");
    cr_assert_eq(cfg->global.evaluation_interval_ms, 5000);
    cr_assert_eq(cfg->alerting.resolve_after_ms, 30 * 60 * 1000);
    cr_assert_eq(cfg->alerting.min_severity, 2);
    cr_assert_eq(cfg->alerting.n_alertmanagers, 1);
    const alertmanager_config *am = &cfg->alerting.alertmanagers[0];
    cr_assert_str_eq(am->scheme, "https");
    cr_assert_str_eq(am->path_prefix, "/am");
    cr_assert_eq(am->timeout_ms, 3000);
    cr_assert(am->sc.http.has_basic_auth);
    cr_assert_eq(am->sc.n_sd_configs, 2);
    cr_assert_eq(am->sc.sd_configs[1].kind, SD_FILE);
    cr_assert_not(has_warning(cfg, "alertmanagers"), "every SD block discovers Alertmanagers: no warning");
    config_free(cfg);
    cfg = parse_ok("scrape_configs: []\n");
    cr_assert_eq(cfg->alerting.resolve_after_ms, 3600 * 1000, "default 1h");
    cr_assert_eq(cfg->alerting.min_severity, 1, "default warning");
    cr_assert_eq(cfg->global.evaluation_interval_ms, 60000);
    config_free(cfg);
    static const char *const bad[][2] = {
        {"alerting:\n  min_severity: fatal\n", "inline.yml:2:17: invalid min_severity \"fatal\" (expected info, warning or error)"},
        {"alerting:\n  alertmanagers:\n    - api_version: v1\n",
         "inline.yml:3:20: unsupported Alertmanager API version \"v1\" (expected v2; v1 is gone since Alertmanager 0.27)"},
        {"alerting:\n  resolve_after: 0s\n", "inline.yml:2:18: resolve_after must be positive (expected a duration such as 1h)"},
        {"alerting:\n  alertmanagers:\n    - schema: http\n", "inline.yml:3:7: "},
        /* per-Alertmanager alert_relabel_configs came with Prometheus 2.51; 2.42 rejects it */
        {"alerting:\n  alertmanagers:\n    - alert_relabel_configs: []\n",
         "inline.yml:3:7: field alert_relabel_configs not found in type alertmanager config"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        cr_assert_null(config_parse(bad[i][0], strlen(bad[i][0]), "inline.yml", err, sizeof err), "%s", bad[i][0]);
        cr_assert(strncmp(err, bad[i][1], strlen(bad[i][1])) == 0, "expected \"%s\", got \"%s\"", bad[i][1], err);
    }
}
