/* fuzz_remote_sd: the response parsers of the dns, consul and http SD providers (src/sd/sd_remote.h), whose
 * input comes from the network. Byte 0 picks the parser, the rest is the response:
 *   0-3 dns_answer_to_group (raw DNS message; record type SRV, A, AAAA, MX by byte 0)
 *   4   consul_parse_catalog   5 consul_parse_health   6 consul_parse_agent_datacenter
 *   7   http_sd_parse_response 8 dns_resolv_conf_parse + dns_name_list
 * http_sd: an odd-sized input has its group labels left in the buffer the frozen group takes
 * (sd_json_adopt_min 0), an even-sized one copied (the default up to 64 KiB of labels text). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sd/sd_internal.h"
#include "sd/sd_remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 128 * 1024)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[512];
    unsigned sel = data[0] % 9;
    if (sel <= 3) {
        static const dns_sd_type types[] = {DNS_SD_SRV, DNS_SD_A, DNS_SD_AAAA, DNS_SD_MX};
        target_group g;
        target_group_init(&g, "svc.example.");
        dns_answer_to_group((const unsigned char *)body, len, "svc.example.", types[sel], 9090, &g, err, sizeof err);
        target_group_free(&g);
    } else if (sel == 4) {
        consul_catalog_entry *v = NULL;
        size_t n = 0;
        if (consul_parse_catalog(body, len, &v, &n, err, sizeof err) == 0)
            consul_catalog_free(v, n);
    } else if (sel == 5) {
        target_group g;
        target_group_init(&g, "web");
        consul_parse_health(body, len, "web", "dc1", ",", &g, err, sizeof err);
        target_group_free(&g);
    } else if (sel == 6) {
        free(consul_parse_agent_datacenter(body, len, err, sizeof err));
    } else if (sel == 7) {
        target_group *g = NULL;
        size_t n = 0;
        sd_json_adopt_min = size & 1 ? 0 : 65536; /* group labels copied, or left in the buffer the group takes */
        if (http_sd_parse_response("http://sd.example/targets", 200, "application/json", body, len, &g, &n, err,
                                   sizeof err) == 0)
            sd_groups_free(g, n);
    } else {
        char *text = strndup(body, len);
        dns_resolv_conf rc = {0};
        dns_resolv_conf_parse(text, &rc);
        size_t n = 0;
        char **names = dns_name_list("svc", &rc, &n);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        dns_resolv_conf_free(&rc);
        free(text);
    }
    return 0;
}
