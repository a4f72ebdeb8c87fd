/* auth: see auth.h. bcrypt is libxcrypt's crypt_r (Debian's libc6 ships libcrypt.so.1 = libxcrypt, which
 * knows $2a$, $2b$, $2x$ and $2y$). */
#include "http/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

/* exporter-toolkit's hash of "fakepassword", checked for unknown users so a wrong user costs as much as a
 * wrong password. */
static const char fake_hash[] = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

typedef struct cache_entry {
    unsigned char key[SHA256_DIGEST_LENGTH];
    bool used, ok;
} cache_entry;

struct auth_cache {
    pthread_mutex_t mu;       /* the cache */
    pthread_mutex_t bcrypt_mu; /* one bcrypt at a time */
    cache_entry e[AUTH_CACHE_SIZE];
    size_t next; /* round-robin replacement */
    unsigned long runs;
};

auth_cache *auth_cache_new(void)
{
    auth_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->bcrypt_mu, NULL);
    return c;
}

void auth_cache_free(auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->bcrypt_mu);
    explicit_bzero(c, sizeof *c);
    free(c);
}

unsigned long auth_bcrypt_runs(const auth_cache *c)
{
    return c->runs;
}

int auth_parse_basic(const char *h, char *user, size_t ulen, char *pass, size_t plen)
{
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0 || n % 4 != 0 || n > 4096)
        return -1;
    unsigned char buf[3073];
    int len = EVP_DecodeBlock(buf, (const unsigned char *)h, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (n >= 1 && h[n - 1] == '=')
        len--;
    if (n >= 2 && h[n - 2] == '=')
        len--;
    buf[len] = 0;
    if (memchr(buf, 0, (size_t)len)) {
        explicit_bzero(buf, sizeof buf);
        return -1;
    }
    char *colon = memchr(buf, ':', (size_t)len);
    int rc = -1;
    if (colon) {
        size_t ul = (size_t)(colon - (char *)buf), pl = (size_t)len - ul - 1;
        if (ul < ulen && pl < plen) {
            memcpy(user, buf, ul);
            user[ul] = 0;
            memcpy(pass, colon + 1, pl);
            pass[pl] = 0;
            rc = 0;
        }
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

static void cache_key(const char *user, const char *hash, const char *pass, unsigned char out[SHA256_DIGEST_LENGTH])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m)
        abort();
    EVP_DigestInit_ex(m, EVP_sha256(), NULL);
    EVP_DigestUpdate(m, user, strlen(user) + 1);
    EVP_DigestUpdate(m, hash, strlen(hash) + 1);
    EVP_DigestUpdate(m, pass, strlen(pass));
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
}

static bool bcrypt_verify(auth_cache *c, const char *hash, const char *pass)
{
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    pthread_mutex_lock(&c->bcrypt_mu);
    const char *out = crypt_r(pass, hash, cd);
    c->runs++;
    pthread_mutex_unlock(&c->bcrypt_mu);
    size_t hl = strlen(hash);
    bool ok = out && out[0] != '*' && strlen(out) == hl && CRYPTO_memcmp(out, hash, hl) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return ok;
}

bool auth_check(auth_cache *c, const web_config *cfg, const char *user, const char *pass)
{
    const char *hash = web_config_user_hash(cfg, user);
    bool known = hash != NULL;
    if (!known)
        hash = fake_hash;
    unsigned char key[SHA256_DIGEST_LENGTH];
    cache_key(user, hash, pass, key);
    pthread_mutex_lock(&c->mu);
    int hit = -1;
    for (size_t i = 0; i < AUTH_CACHE_SIZE; i++) /* no early exit: the time does not depend on the hit */
        if (c->e[i].used && CRYPTO_memcmp(c->e[i].key, key, sizeof key) == 0)
            hit = (int)i;
    bool ok = hit >= 0 && c->e[hit].ok;
    pthread_mutex_unlock(&c->mu);
    if (hit < 0) {
        ok = bcrypt_verify(c, hash, pass) && known;
        pthread_mutex_lock(&c->mu);
        cache_entry *e = &c->e[c->next];
        c->next = (c->next + 1) % AUTH_CACHE_SIZE;
        memcpy(e->key, key, sizeof key);
        e->used = true;
        e->ok = ok;
        pthread_mutex_unlock(&c->mu);
    }
    explicit_bzero(key, sizeof key);
    return ok && known;
}
