/* Streaming digests over OpenSSL and a one-pass copy-and-hash between two
 * file descriptors.  Called through CFFI, which releases the GIL around
 * every call, so uploads hash in parallel with other requests.
 *
 * pf_hasher keeps OpenSSL's low-level SHA256_CTX / MD5_CTX rather than an
 * EVP_MD_CTX: with OpenSSL 3 providers the EVP context is opaque, and a
 * resumable upload must save its running digest after every chunk and
 * restore it in another process (pf_hasher_export / pf_hasher_import).
 * Both APIs run the same block functions (SHA-NI/AVX2 assembly), and the
 * low-level one skips EVP's dispatch.  copy_and_hash never exports, so it
 * stays on EVP. */

/* The low-level digest API is deprecated in OpenSSL 3 but still shipped
 * unless OpenSSL is built with no-deprecated; silence its warnings here. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>

#include "hashing.h"

#define PF_COPY_BUFSIZE (256 * 1024)

struct pf_hasher {
    int algo;
    union {
        SHA256_CTX sha256;
        MD5_CTX md5;
    } u;
};

pf_hasher *pf_hasher_new(int algo)
{
    pf_hasher *h;
    if (algo != PF_SHA256 && algo != PF_MD5)
        return NULL;
    h = (pf_hasher *)OPENSSL_zalloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->algo = algo;
    if (algo == PF_SHA256)
        SHA256_Init(&h->u.sha256);
    else
        MD5_Init(&h->u.md5);
    return h;
}

pf_hasher *pf_hasher_copy(const pf_hasher *src)
{
    /* the contexts hold no pointers: a struct copy is a full clone */
    pf_hasher *h = (pf_hasher *)OPENSSL_malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    *h = *src;
    return h;
}

void pf_hasher_free(pf_hasher *h)
{
    OPENSSL_clear_free(h, sizeof(*h));
}

int pf_hasher_update(pf_hasher *h, const unsigned char *buf, size_t len)
{
    int ok = h->algo == PF_SHA256 ? SHA256_Update(&h->u.sha256, buf, len)
                                  : MD5_Update(&h->u.md5, buf, len);
    return ok == 1 ? 0 : PF_ECRYPTO;
}

/* Finalises a copy so the running context stays usable (hexdigest() and
 * then more update() calls, as with hashlib). */
int pf_hasher_digest(const pf_hasher *h, unsigned char *out, unsigned int *outlen)
{
    int ok;
    if (h->algo == PF_SHA256) {
        SHA256_CTX tmp = h->u.sha256;
        ok = SHA256_Final(out, &tmp);
        *outlen = SHA256_DIGEST_LENGTH;
        OPENSSL_cleanse(&tmp, sizeof(tmp));
    } else {
        MD5_CTX tmp = h->u.md5;
        ok = MD5_Final(out, &tmp);
        *outlen = MD5_DIGEST_LENGTH;
        OPENSSL_cleanse(&tmp, sizeof(tmp));
    }
    return ok == 1 ? 0 : PF_ECRYPTO;
}

int pf_hasher_size(const pf_hasher *h)
{
    return h->algo == PF_SHA256 ? SHA256_DIGEST_LENGTH : MD5_DIGEST_LENGTH;
}

/* Saved state, format version 1: PF_STATE_SIZE (120) bytes, every integer
 * big-endian whatever the host, so a state saved on one machine resumes on
 * any other running the same format:
 *
 *   offset size
 *     0     4   magic "PFHS"
 *     4     1   format version, 1
 *     5     1   algorithm: PF_SHA256 (1) or PF_MD5 (2)
 *     6     1   n, input bytes waiting for a full block (0..63)
 *     7     1   reserved, 0
 *     8     8   message length so far in bits (the context's Nh:Nl)
 *    16    32   chaining words as 32-bit integers: SHA-256 h0..h7;
 *               MD5 A, B, C, D followed by 16 zero bytes
 *    48    64   the block buffer: the n pending input bytes, then zeros
 *   112     8   check: the first 8 bytes of SHA-256 over bytes 0..111
 *
 * Import refuses any state that is not exactly this: wrong size, magic or
 * version, another algorithm, nonzero padding, a length that is not whole
 * bytes or disagrees with n, or a check that does not match (a state
 * damaged in storage). */
#define PF_STATE_VERSION 1
#define PF_STATE_CHECK_AT 112
static const unsigned char pf_state_magic[4] = {'P', 'F', 'H', 'S'};

static void pf_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t pf_get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void pf_state_check(const unsigned char *state, unsigned char check[8])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, state, PF_STATE_CHECK_AT);
    SHA256_Final(md, &c);
    memcpy(check, md, 8);
}

static int pf_all_zero(const unsigned char *p, size_t len)
{
    unsigned char acc = 0;
    while (len-- > 0)
        acc |= *p++;
    return acc == 0;
}

/* Writes PF_STATE_SIZE bytes to out; returns PF_STATE_SIZE, or PF_ESTATE
 * when outlen is too small. */
int pf_hasher_export(const pf_hasher *h, unsigned char *out, size_t outlen)
{
    unsigned int num, i;

    if (outlen < PF_STATE_SIZE)
        return PF_ESTATE;
    memset(out, 0, PF_STATE_SIZE);
    memcpy(out, pf_state_magic, 4);
    out[4] = PF_STATE_VERSION;
    out[5] = (unsigned char)h->algo;
    /* the block buffers are declared as words but filled bytewise */
    if (h->algo == PF_SHA256) {
        const SHA256_CTX *c = &h->u.sha256;
        num = c->num;
        pf_put32(out + 8, c->Nh);
        pf_put32(out + 12, c->Nl);
        for (i = 0; i < 8; i++)
            pf_put32(out + 16 + 4 * i, c->h[i]);
        memcpy(out + 48, c->data, num < 64 ? num : 0);
    } else {
        const MD5_CTX *c = &h->u.md5;
        num = c->num;
        pf_put32(out + 8, c->Nh);
        pf_put32(out + 12, c->Nl);
        pf_put32(out + 16, c->A);
        pf_put32(out + 20, c->B);
        pf_put32(out + 24, c->C);
        pf_put32(out + 28, c->D);
        memcpy(out + 48, c->data, num < 64 ? num : 0);
    }
    if (num >= 64)
        return PF_ECRYPTO; /* never after an update; not a state to save */
    out[6] = (unsigned char)num;
    pf_state_check(out, out + PF_STATE_CHECK_AT);
    return PF_STATE_SIZE;
}

/* A new hasher resuming a state from pf_hasher_export, or NULL with *err
 * set: PF_ESTATE_FORMAT, PF_ESTATE_ALGO, PF_ESTATE (see the layout above)
 * or PF_ENOMEM.  Reads no byte past state[len - 1]. */
pf_hasher *pf_hasher_import(int algo, const unsigned char *state, size_t len, int *err)
{
    unsigned char check[8];
    uint32_t nh, nl;
    unsigned int num, i;
    pf_hasher *h;

    if (len != PF_STATE_SIZE) {
        /* a size this format never had: not one of its states at all */
        *err = len >= 5 && memcmp(state, pf_state_magic, 4) == 0 && state[4] == PF_STATE_VERSION
                   ? PF_ESTATE : PF_ESTATE_FORMAT;
        return NULL;
    }
    if (memcmp(state, pf_state_magic, 4) != 0 || state[4] != PF_STATE_VERSION) {
        *err = PF_ESTATE_FORMAT;
        return NULL;
    }
    pf_state_check(state, check);
    if (CRYPTO_memcmp(check, state + PF_STATE_CHECK_AT, 8) != 0) {
        *err = PF_ESTATE;
        return NULL;
    }
    if ((algo != PF_SHA256 && algo != PF_MD5) || state[5] != algo) {
        *err = PF_ESTATE_ALGO;
        return NULL;
    }
    num = state[6];
    nh = pf_get32(state + 8);
    nl = pf_get32(state + 12);
    /* whole bytes only, n = length mod 64, zeros wherever nothing is kept */
    if (state[7] != 0 || num >= 64 || (nl & 7) != 0 || ((nl >> 3) & 63) != num
        || (algo == PF_MD5 && !pf_all_zero(state + 32, 16))
        || !pf_all_zero(state + 48 + num, 64 - num)) {
        *err = PF_ESTATE;
        return NULL;
    }
    h = pf_hasher_new(algo);
    if (h == NULL) {
        *err = PF_ENOMEM;
        return NULL;
    }
    /* pf_hasher_new zeroed the block buffer and set SHA-256's md_len */
    if (algo == PF_SHA256) {
        SHA256_CTX *c = &h->u.sha256;
        for (i = 0; i < 8; i++)
            c->h[i] = pf_get32(state + 16 + 4 * i);
        c->Nh = nh;
        c->Nl = nl;
        memcpy(c->data, state + 48, num);
        c->num = num;
    } else {
        MD5_CTX *c = &h->u.md5;
        c->A = pf_get32(state + 16);
        c->B = pf_get32(state + 20);
        c->C = pf_get32(state + 24);
        c->D = pf_get32(state + 28);
        c->Nh = nh;
        c->Nl = nl;
        memcpy(c->data, state + 48, num);
        c->num = num;
    }
    *err = 0;
    return h;
}

static int pf_write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* copy_and_hash runs as a two-stage pipeline once the input is longer than
 * one chunk: this thread reads and writes, a helper thread hashes.  SHA-256
 * and the two memcpys of read()/write() then overlap on two cores instead
 * of adding up.  The first chunk is hashed inline, so small uploads never
 * pay for a thread. */
#define PF_NBUF 8

struct pf_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *bufs[PF_NBUF];
    size_t lens[PF_NBUF];
    int tail;   /* next slot to hash */
    int count;  /* slots filled and not yet hashed */
    int done;   /* no more slots will be filled */
    int failed; /* digest update failed */
    EVP_MD_CTX *ctx;
};

static void *pf_hash_worker(void *arg)
{
    struct pf_pipe *p = (struct pf_pipe *)arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int slot;
        size_t len;
        while (p->count == 0 && !p->done)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->count == 0)
            break; /* done and drained */
        slot = p->tail;
        len = p->lens[slot];
        pthread_mutex_unlock(&p->mu);
        /* after a failure keep draining so the producer never blocks */
        if (!p->failed && EVP_DigestUpdate(p->ctx, p->bufs[slot], len) != 1)
            p->failed = 1;
        pthread_mutex_lock(&p->mu);
        p->tail = (p->tail + 1) % PF_NBUF;
        p->count--;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static ssize_t pf_read_full_chunk(int fd, unsigned char *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR)
            return n < 0 ? -errno : n;
    }
}

int pf_copy_and_hash(int src_fd, int dst_fd, uint64_t limit,
                     unsigned char *digest, uint64_t *size_out,
                     unsigned char *head, size_t head_cap, size_t *head_len)
{
    struct pf_pipe p;
    pthread_t worker;
    int threaded = 0, tried_thread = 0, slot = 0, i;
    uint64_t total = 0;
    unsigned int dlen = 0;
    int rc = 0;

    memset(&p, 0, sizeof(p));
    *size_out = 0;
    *head_len = 0;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.ctx = EVP_MD_CTX_new();
    p.bufs[0] = (unsigned char *)OPENSSL_malloc(PF_COPY_BUFSIZE);
    if (p.ctx == NULL || p.bufs[0] == NULL) {
        rc = PF_ENOMEM;
        goto done;
    }
    if (EVP_DigestInit_ex(p.ctx, EVP_sha256(), NULL) != 1) {
        rc = PF_ECRYPTO;
        goto done;
    }
    for (;;) {
        ssize_t n;
        if (threaded) {
            /* wait for a free slot: the one after the filled ones */
            pthread_mutex_lock(&p.mu);
            while (p.count == PF_NBUF)
                pthread_cond_wait(&p.cv, &p.mu);
            slot = (p.tail + p.count) % PF_NBUF;
            pthread_mutex_unlock(&p.mu);
        }
        n = pf_read_full_chunk(src_fd, p.bufs[slot], PF_COPY_BUFSIZE);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        /* Refuse the chunk that crosses the limit before writing any of it. */
        if ((uint64_t)n > limit - total) {
            rc = PF_ELIMIT;
            break;
        }
        if (*head_len < head_cap) {
            size_t take = head_cap - *head_len;
            if (take > (size_t)n)
                take = (size_t)n;
            memcpy(head + *head_len, p.bufs[slot], take);
            *head_len += take;
        }
        rc = pf_write_all(dst_fd, p.bufs[slot], (size_t)n);
        if (rc != 0)
            break;
        total += (uint64_t)n;
        if (threaded) {
            pthread_mutex_lock(&p.mu);
            p.lens[slot] = (size_t)n;
            p.count++;
            pthread_cond_broadcast(&p.cv);
            pthread_mutex_unlock(&p.mu);
            continue;
        }
        if (EVP_DigestUpdate(p.ctx, p.bufs[0], (size_t)n) != 1) {
            rc = PF_ECRYPTO;
            break;
        }
        if (!tried_thread) {
            /* more than one chunk: worth a hashing thread */
            tried_thread = 1;
            for (i = 1; i < PF_NBUF; i++) {
                p.bufs[i] = (unsigned char *)OPENSSL_malloc(PF_COPY_BUFSIZE);
                if (p.bufs[i] == NULL)
                    break;
            }
            if (i == PF_NBUF && pthread_create(&worker, NULL, pf_hash_worker, &p) == 0)
                threaded = 1;
        }
    }
    if (threaded) {
        pthread_mutex_lock(&p.mu);
        p.done = 1;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        pthread_join(worker, NULL);
        if (rc == 0 && p.failed)
            rc = PF_ECRYPTO;
    }
    if (rc == 0 && EVP_DigestFinal_ex(p.ctx, digest, &dlen) != 1)
        rc = PF_ECRYPTO;
done:
    *size_out = total;
    EVP_MD_CTX_free(p.ctx);
    for (i = 0; i < PF_NBUF; i++)
        OPENSSL_free(p.bufs[i]);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
