/* Streaming digests over OpenSSL's EVP API and a one-pass copy-and-hash
 * between two file descriptors.  Called through CFFI, which releases the
 * GIL around every call, so uploads hash in parallel with other requests. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "hashing.h"

#define PF_COPY_BUFSIZE (256 * 1024)

struct pf_hasher {
    EVP_MD_CTX *ctx;
};

static const EVP_MD *pf_md(int algo)
{
    switch (algo) {
    case PF_SHA256: return EVP_sha256();
    case PF_MD5: return EVP_md5();
    default: return NULL;
    }
}

pf_hasher *pf_hasher_new(int algo)
{
    const EVP_MD *md = pf_md(algo);
    pf_hasher *h;
    if (md == NULL)
        return NULL;
    h = (pf_hasher *)OPENSSL_zalloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
        pf_hasher_free(h);
        return NULL;
    }
    return h;
}

pf_hasher *pf_hasher_copy(const pf_hasher *src)
{
    pf_hasher *h = (pf_hasher *)OPENSSL_zalloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_MD_CTX_copy_ex(h->ctx, src->ctx) != 1) {
        pf_hasher_free(h);
        return NULL;
    }
    return h;
}

void pf_hasher_free(pf_hasher *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    OPENSSL_free(h);
}

int pf_hasher_update(pf_hasher *h, const unsigned char *buf, size_t len)
{
    return EVP_DigestUpdate(h->ctx, buf, len) == 1 ? 0 : PF_ECRYPTO;
}

/* Finalises a copy so the running context stays usable (hexdigest() and
 * then more update() calls, as with hashlib). */
int pf_hasher_digest(const pf_hasher *h, unsigned char *out, unsigned int *outlen)
{
    EVP_MD_CTX *tmp = EVP_MD_CTX_new();
    int rc = PF_ECRYPTO;
    if (tmp == NULL)
        return PF_ENOMEM;
    if (EVP_MD_CTX_copy_ex(tmp, h->ctx) == 1 && EVP_DigestFinal_ex(tmp, out, outlen) == 1)
        rc = 0;
    EVP_MD_CTX_free(tmp);
    return rc;
}

int pf_hasher_size(const pf_hasher *h)
{
    return EVP_MD_CTX_get_size(h->ctx);
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
