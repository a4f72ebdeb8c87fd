/* store/memsearch: the memory store's full-text search index, one per aggregate.
 *
 * The query semantics are store.h's (case-insensitive substring of the key or of any one field of any
 * sample: class, message, stack lines of the cause chain, HTTP method, URL, header names and values,
 * body, uuid). Doing that with strcasestr over every field of every sample cost ~200 ms per request at
 * 100,000 errors, so each aggregate keeps:
 *   text  the key and the samples' fields, lower-cased (ASCII, as strcasestr in the C locale), each
 *         followed by a NUL. A query cannot contain a NUL, so memmem over text finds exactly the
 *         substrings of single fields. Equal fields of different samples are stored once (a per-index
 *         set of field offsets): 100 samples of one error mostly share class, message and stack.
 *   sig   a 512-bit signature of the byte pairs (bigrams) inside the fields: a word whose bigrams are
 *         not all in sig cannot be in text, which rejects most aggregates without touching text.
 * Maintained incrementally: an added sample appends its new fields; an evicted sample leaves its text
 * behind ("stale") until stale text could outweigh live text, then the index is rebuilt from the live
 * samples (memsearch_compact), so the rebuild cost per eviction stays bounded.
 * Bounded: each sample contributes at most MEMSEARCH_SAMPLE_BUDGET bytes of fields (taken in a fixed
 * order; fields that do not fit are skipped and the sample counts as "partial").
 * Exactness: a miss while some live sample is partial, and a hit while stale text is present, are
 * confirmed against the samples themselves (store_occurrence_matches), so results never differ from the
 * plain scan. */
#ifndef LOOKOUT_STORE_MEMSEARCH_H
#define LOOKOUT_STORE_MEMSEARCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "periskop/payload.h"

#define MEMSEARCH_SAMPLE_BUDGET 4096
#define MEMSEARCH_SIG_WORDS 8 /* 512 bits */

typedef struct memsearch_index {
    char *text;            /* key, then fields; each NUL-terminated, lower-cased */
    uint32_t len, cap;     /* bytes used / allocated in text */
    uint32_t keylen;       /* text[0..keylen) is the key */
    uint32_t *set;         /* open addressing: offset+1 of each deduplicated field, 0 = empty */
    uint32_t set_cap, set_n;
    uint32_t partial;      /* live samples with fields left out of text (budget) */
    uint32_t stale;        /* evicted samples whose text is still in text */
    uint32_t live;         /* samples added and not removed since the last rebuild */
    uint64_t sig[MEMSEARCH_SIG_WORDS];
} memsearch_index;

/* An index holding only key. */
void memsearch_init(memsearch_index *ix, const char *key);
void memsearch_free(memsearch_index *ix);
/* o joined the aggregate's samples. */
void memsearch_add(memsearch_index *ix, const payload_occurrence *o);
/* o left the aggregate's samples (call before dropping the reference). */
void memsearch_remove(memsearch_index *ix, const payload_occurrence *o);
/* After a batch of adds/removes: rebuilds from the live samples when stale text has built up (cheap
 * otherwise). samples are the aggregate's current ones. */
void memsearch_compact(memsearch_index *ix, payload_occurrence *const *samples, size_t n);

typedef struct memsearch_word {
    char *w; /* lower-cased, NUL-terminated */
    size_t len;
    uint64_t sig[MEMSEARCH_SIG_WORDS];
} memsearch_word;

typedef struct memsearch_query {
    memsearch_word *words;
    size_t n; /* 0: no text filter */
    char *buf;
    uint64_t sig[MEMSEARCH_SIG_WORDS]; /* union of the words' signatures */
} memsearch_query;

/* q NULL/"": no filter. all_words: q split at whitespace, every word must match (store_query.q_all_words);
 * else q is one substring. */
void memsearch_query_init(memsearch_query *mq, const char *q, bool all_words);
/* The same from separate words (phrases may contain spaces); words[i] are copied. */
void memsearch_query_init_words(memsearch_query *mq, const char *const *words, size_t n);
void memsearch_query_free(memsearch_query *mq);
/* False when sig (an index's, with no partial sample) rules the aggregate out: a quick first test that
 * needs no access to the text. */
static inline bool memsearch_sig_may_match(const memsearch_query *mq, const uint64_t *sig)
{
    uint64_t miss = 0;
    for (int k = 0; k < MEMSEARCH_SIG_WORDS; k++)
        miss |= mq->sig[k] & ~sig[k];
    return miss == 0;
}
/* True when the aggregate (its index and live samples) matches every word. */
bool memsearch_matches(const memsearch_query *mq, const memsearch_index *ix, payload_occurrence *const *samples,
                       size_t n);

#endif
