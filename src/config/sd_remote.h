/* sd_remote: parse/free/equal/copy/canonical text of dns_sd_configs, consul_sd_configs and http_sd_configs (parse_sd_remote.c),
 * referenced by the SD table in parse_sd.c. Internal to src/config/. */
#ifndef LOOKOUT_CONFIG_SD_REMOTE_H
#define LOOKOUT_CONFIG_SD_REMOTE_H
#include "config/internal.h"

int cfg_parse_dns_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd);
void cfg_free_dns_sd(sd_config *sd);
bool cfg_equal_dns_sd(const sd_config *a, const sd_config *b);
void cfg_copy_dns_sd(sd_config *dst, const sd_config *src);
void cfg_canon_dns_sd(strbuf *sb, const sd_config *sd, bool with_secrets);

int cfg_parse_consul_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd);
void cfg_free_consul_sd(sd_config *sd);
bool cfg_equal_consul_sd(const sd_config *a, const sd_config *b);
void cfg_copy_consul_sd(sd_config *dst, const sd_config *src);
void cfg_canon_consul_sd(strbuf *sb, const sd_config *sd, bool with_secrets);

int cfg_parse_http_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd);
void cfg_free_http_sd(sd_config *sd);
bool cfg_equal_http_sd(const sd_config *a, const sd_config *b);
void cfg_copy_http_sd(sd_config *dst, const sd_config *src);
void cfg_canon_http_sd(strbuf *sb, const sd_config *sd, bool with_secrets);

#endif
