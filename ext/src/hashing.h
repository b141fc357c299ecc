#ifndef PASTEFILE_HASHING_H
#define PASTEFILE_HASHING_H

#include <stddef.h>
#include <stdint.h>

/* cdef-begin: build_ext.py hands this block to CFFI */
#define PF_SHA256 1
#define PF_MD5 2

/* Error codes; a negative value other than these is -errno. */
#define PF_ELIMIT -100000
#define PF_ENOMEM -100001
#define PF_ECRYPTO -100002
#define PF_ESTATE -100003         /* saved state corrupt or inconsistent */
#define PF_ESTATE_FORMAT -100004  /* not a saved state of this format version */
#define PF_ESTATE_ALGO -100005    /* saved state of another algorithm */

/* Size of an exported hasher state; the same for every algorithm. */
#define PF_STATE_SIZE 120

typedef struct pf_hasher pf_hasher;

pf_hasher *pf_hasher_new(int algo);
pf_hasher *pf_hasher_copy(const pf_hasher *src);
void pf_hasher_free(pf_hasher *h);
int pf_hasher_update(pf_hasher *h, const unsigned char *buf, size_t len);
int pf_hasher_digest(const pf_hasher *h, unsigned char *out, unsigned int *outlen);
int pf_hasher_size(const pf_hasher *h);
/* Save and resume a running digest (layout in hashing.c): export writes
 * PF_STATE_SIZE bytes and returns PF_STATE_SIZE; import returns NULL and
 * sets *err for a state it refuses. */
int pf_hasher_export(const pf_hasher *h, unsigned char *out, size_t outlen);
pf_hasher *pf_hasher_import(int algo, const unsigned char *state, size_t len, int *err);

int pf_copy_and_hash(int src_fd, int dst_fd, uint64_t limit,
                     unsigned char *digest, uint64_t *size_out,
                     unsigned char *head, size_t head_cap, size_t *head_len);
/* cdef-end */

#endif
