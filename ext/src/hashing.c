/* Streaming digests over OpenSSL's EVP API and a one-pass copy-and-hash
 * between two file descriptors.  Called through CFFI, which releases the
 * GIL around every call, so uploads hash in parallel with other requests. */
#include <errno.h>
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

int pf_copy_and_hash(int src_fd, int dst_fd, uint64_t limit,
                     unsigned char *digest, uint64_t *size_out,
                     unsigned char *head, size_t head_cap, size_t *head_len)
{
    static const size_t bufsize = PF_COPY_BUFSIZE;
    unsigned char *buf;
    EVP_MD_CTX *ctx;
    uint64_t total = 0;
    unsigned int dlen = 0;
    int rc = 0;

    *size_out = 0;
    *head_len = 0;
    buf = (unsigned char *)OPENSSL_malloc(bufsize);
    ctx = EVP_MD_CTX_new();
    if (buf == NULL || ctx == NULL) {
        rc = PF_ENOMEM;
        goto done;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = PF_ECRYPTO;
        goto done;
    }
    for (;;) {
        ssize_t n = read(src_fd, buf, bufsize);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto done;
        }
        if (n == 0)
            break;
        /* Refuse the chunk that crosses the limit before writing any of it. */
        if ((uint64_t)n > limit - total) {
            rc = PF_ELIMIT;
            goto done;
        }
        if (*head_len < head_cap) {
            size_t take = head_cap - *head_len;
            if (take > (size_t)n)
                take = (size_t)n;
            memcpy(head + *head_len, buf, take);
            *head_len += take;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = PF_ECRYPTO;
            goto done;
        }
        rc = pf_write_all(dst_fd, buf, (size_t)n);
        if (rc != 0)
            goto done;
        total += (uint64_t)n;
    }
    if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1)
        rc = PF_ECRYPTO;
done:
    *size_out = total;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(buf);
    return rc;
}
