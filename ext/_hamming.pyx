# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Near-duplicate index over 64-bit hashes: radius and top-k Hamming search.

Multi-index hashing (Norouzi, Punjani and Fleet): each hash is cut into four
16-bit substrings and filed in four tables, one bucket per substring value.
Two hashes within Hamming distance r agree to within floor(r / 4) bits on at
least one substring (pigeonhole), so a search probes, in each table, the
buckets whose key is that close to the query's substring, and checks every
hash found there with a popcount.  Probing goes layer by layer (keys at
exactly d bits from the query's), and an entry is examined only in the layer
and table where it is first reachable (its smallest substring distance, the
lowest table among ties), so no result is reported twice and a top-k search
can widen the radius without redoing work.

Before a radius search the entries the probes would reach are counted (one
read per bucket); when checking them would cost more than a straight
popcount pass over every hash (large radii, skewed data), the search scans
instead.  Both give the same results, sorted by (distance, id).

Ids are signed 64-bit integers, unique in an index (adding an id again
replaces its hash); hashes are unsigned 64-bit.  A read-write lock guards the
structure: searches run in parallel, without the GIL; adds and removes are
exclusive.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcpy, memset


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_rwlock_t:
        pass
    int pthread_rwlock_init(pthread_rwlock_t *lock, const void *attr)
    int pthread_rwlock_destroy(pthread_rwlock_t *lock)
    int pthread_rwlock_rdlock(pthread_rwlock_t *lock)
    int pthread_rwlock_wrlock(pthread_rwlock_t *lock)
    int pthread_rwlock_unlock(pthread_rwlock_t *lock)


cdef extern from *:
    """
    static inline int pf_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
    static inline unsigned int pf_ctz32(unsigned int x) { return (unsigned int)__builtin_ctz(x); }
    #define pf_prefetch(p) __builtin_prefetch((const void *)(p))

    #include <stddef.h>
    #include <stdint.h>

    /* Positions i < n with popcount(h[i] ^ q) <= radius, written to out (room
       for n); returns how many.  AVX2 (nibble-table popcount, four hashes a
       step) where the CPU has it, picked at run time; plain loop otherwise. */
    static size_t pf_scan_block_c(const uint64_t *h, size_t n, uint64_t q, int radius,
                                  uint32_t *out) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            if (__builtin_popcountll(h[i] ^ q) <= radius) {
                out[count++] = (uint32_t)i;
            }
        }
        return count;
    }

    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    __attribute__((target("avx2"))) static size_t
    pf_scan_block_avx2(const uint64_t *h, size_t n, uint64_t q, int radius, uint32_t *out) {
        const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                               0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        const __m256i nibble = _mm256_set1_epi8(0x0f);
        const __m256i query = _mm256_set1_epi64x((long long)q);
        const __m256i limit = _mm256_set1_epi64x(radius);
        size_t count = 0, i = 0;
        for (; i + 4 <= n; i += 4) {
            __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(h + i)), query);
            __m256i c = _mm256_add_epi8(
                _mm256_shuffle_epi8(table, _mm256_and_si256(x, nibble)),
                _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble)));
            __m256i d = _mm256_sad_epu8(c, _mm256_setzero_si256());
            int far = _mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(d, limit)));
            if (far != 0xF) {
                for (int j = 0; j < 4; j++) {
                    if (!(far & (1 << j))) {
                        out[count++] = (uint32_t)(i + j);
                    }
                }
            }
        }
        for (; i < n; i++) {
            if (__builtin_popcountll(h[i] ^ q) <= radius) {
                out[count++] = (uint32_t)i;
            }
        }
        return count;
    }
    static size_t pf_scan_block(const uint64_t *h, size_t n, uint64_t q, int radius,
                                uint32_t *out) {
        static int have = -1;
        if (have < 0) {
            __builtin_cpu_init();
            have = __builtin_cpu_supports("avx2") ? 1 : 0;
        }
        return have ? pf_scan_block_avx2(h, n, q, radius, out)
                    : pf_scan_block_c(h, n, q, radius, out);
    }
    #else
    #define pf_scan_block pf_scan_block_c
    #endif
    """
    int pf_popcount64(unsigned long long x) noexcept nogil
    unsigned int pf_ctz32(unsigned int x) noexcept nogil
    void pf_prefetch(const void *p) noexcept nogil
    size_t pf_scan_block(const uint64_t *h, size_t n, uint64_t q, int radius,
                         uint32_t *out) noexcept nogil


cdef enum:
    _TABLES = 4
    _BITS = 16
    _BUCKETS = 1 << 16
    _MASK = (1 << 16) - 1

cdef enum:
    _BATCH = 32         # buckets whose reads are overlapped
    _SCAN_BLOCK = 4096  # hashes per call of the vectorised scan

cdef enum:
    _AUTO = 0
    _MIH = 1
    _SCAN = 2

TABLES = _TABLES
SUBSTRING_BITS = _BITS

# Costs in units of one element of the vectorised popcount scan (about a
# quarter of a nanosecond with AVX2), measured with queries whose buckets
# are not in cache: reading a bucket's header, and examining one entry found
# in a bucket.
cdef double _PROBE_COST = 150.0
cdef double _ENTRY_COST = 80.0

STRATEGY_AUTO = _AUTO
STRATEGY_MIH = _MIH
STRATEGY_SCAN = _SCAN


# One bucket: cap hashes, then cap ids, in one allocation (a search reads
# the hashes, contiguous, and touches an id only for a result).
ctypedef struct _bucket:
    uint64_t *hashes
    int64_t *ids
    uint32_t size
    uint32_t cap

ctypedef struct _hit:
    int64_t id
    int64_t dist

ctypedef struct _hits:
    _hit *items
    size_t size
    size_t cap


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


cdef inline uint64_t _mix(uint64_t x) noexcept nogil:
    # splitmix64 finaliser: spreads sequential ids over the id map
    x ^= x >> 30
    x *= <uint64_t>0xbf58476d1ce4e5b9
    x ^= x >> 27
    x *= <uint64_t>0x94d049bb133111eb
    x ^= x >> 31
    return x


cdef inline int _push(_hits *h, int64_t id, int64_t dist) noexcept nogil:
    cdef size_t cap
    cdef _hit *items
    if h.size == h.cap:
        cap = h.cap * 2 if h.cap else 64
        items = <_hit *>realloc(h.items, cap * sizeof(_hit))
        if items == NULL:
            return -1
        h.items = items
        h.cap = cap
    h.items[h.size].id = id
    h.items[h.size].dist = dist
    h.size += 1
    return 0


cdef int _cmp_hit(const void *a, const void *b) noexcept nogil:
    cdef const _hit *x = <const _hit *>a
    cdef const _hit *y = <const _hit *>b
    if x.dist != y.dist:
        return -1 if x.dist < y.dist else 1
    if x.id != y.id:
        return -1 if x.id < y.id else 1
    return 0


cdef inline uint32_t _next_mask(uint32_t v) noexcept nogil:
    # next larger integer with the same number of set bits (Gosper)
    cdef uint32_t t = v | (v - 1)
    return (t + 1) | (((~t & -(~t)) - 1) >> (pf_ctz32(v) + 1))


cdef double _binomial16[17]


cdef void _init_binomials() noexcept nogil:
    cdef int d, i
    cdef double c
    for d in range(17):
        c = 1.0
        for i in range(d):
            c = c * (16 - i) / (i + 1)
        _binomial16[d] = c


_init_binomials()


cdef class HammingIndexCore:
    """The C structure; ``pastefile.ext.hamming.HammingIndex`` checks arguments."""

    cdef _bucket *tables            # _TABLES * _BUCKETS
    cdef uint64_t *hashes           # dense: slot -> hash
    cdef int64_t *ids               # dense: slot -> id
    cdef size_t n
    cdef size_t cap
    cdef int64_t *map_keys          # id -> slot, open addressing, linear probing
    cdef int64_t *map_slots         # -1: empty
    cdef size_t map_cap             # power of two
    cdef pthread_rwlock_t lock

    def __cinit__(self):
        self.tables = <_bucket *>calloc(_TABLES * _BUCKETS, sizeof(_bucket))
        self.map_cap = 1024
        self.map_keys = <int64_t *>malloc(self.map_cap * sizeof(int64_t))
        self.map_slots = <int64_t *>malloc(self.map_cap * sizeof(int64_t))
        if self.tables == NULL or self.map_keys == NULL or self.map_slots == NULL:
            raise MemoryError()
        memset(self.map_slots, 0xFF, self.map_cap * sizeof(int64_t))
        if pthread_rwlock_init(&self.lock, NULL) != 0:
            raise MemoryError("cannot create the index lock")

    def __dealloc__(self):
        cdef size_t i
        if self.tables != NULL:
            for i in range(_TABLES * _BUCKETS):
                free(self.tables[i].hashes)
            free(self.tables)
        free(self.hashes)
        free(self.ids)
        free(self.map_keys)
        free(self.map_slots)
        pthread_rwlock_destroy(&self.lock)

    # -- id map --------------------------------------------------------------

    cdef inline size_t _map_find(self, int64_t id) noexcept nogil:
        """Position of id in the map, or of the empty cell where it would go."""
        cdef size_t mask = self.map_cap - 1
        cdef size_t i = _mix(<uint64_t>id) & mask
        while self.map_slots[i] >= 0 and self.map_keys[i] != id:
            i = (i + 1) & mask
        return i

    cdef int _map_grow(self, size_t cap) noexcept nogil:
        """Rehash into cap cells (a power of two larger than the current)."""
        cdef size_t old_cap = self.map_cap, i, j
        cdef int64_t *old_keys = self.map_keys
        cdef int64_t *old_slots = self.map_slots
        self.map_keys = <int64_t *>malloc(cap * sizeof(int64_t))
        self.map_slots = <int64_t *>malloc(cap * sizeof(int64_t))
        if self.map_keys == NULL or self.map_slots == NULL:
            free(self.map_keys)
            free(self.map_slots)
            self.map_keys = old_keys
            self.map_slots = old_slots
            return -1
        memset(self.map_slots, 0xFF, cap * sizeof(int64_t))
        self.map_cap = cap
        for i in range(old_cap):
            if old_slots[i] >= 0:
                j = self._map_find(old_keys[i])
                self.map_keys[j] = old_keys[i]
                self.map_slots[j] = old_slots[i]
        free(old_keys)
        free(old_slots)
        return 0

    cdef void _map_delete_at(self, size_t i) noexcept nogil:
        # backward-shift deletion keeps probe sequences unbroken
        cdef size_t mask = self.map_cap - 1
        cdef size_t j = i, home
        self.map_slots[i] = -1
        while True:
            j = (j + 1) & mask
            if self.map_slots[j] < 0:
                return
            home = _mix(<uint64_t>self.map_keys[j]) & mask
            # move j back to i unless its home lies cyclically in (i, j]
            if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                self.map_keys[i] = self.map_keys[j]
                self.map_slots[i] = self.map_slots[j]
                self.map_slots[j] = -1
                i = j

    # -- buckets ---------------------------------------------------------------

    cdef int _bucket_grow(self, _bucket *b, uint32_t cap) noexcept nogil:
        cdef uint64_t *block = <uint64_t *>malloc(<size_t>cap * 16)
        if block == NULL:
            return -1
        if b.size:
            memcpy(block, b.hashes, b.size * sizeof(uint64_t))
            memcpy(block + cap, b.ids, b.size * sizeof(int64_t))
        free(b.hashes)
        b.hashes = block
        b.ids = <int64_t *>(block + cap)
        b.cap = cap
        return 0

    cdef int _bucket_add(self, uint64_t hash, int64_t id) noexcept nogil:
        cdef int t
        cdef _bucket *b
        for t in range(_TABLES):
            b = &self.tables[t * _BUCKETS + ((hash >> (_BITS * t)) & _MASK)]
            if b.size == b.cap and self._bucket_grow(b, b.cap * 2 if b.cap else 4) != 0:
                return -1
            b.hashes[b.size] = hash
            b.ids[b.size] = id
            b.size += 1
        return 0

    cdef void _bucket_remove(self, uint64_t hash, int64_t id) noexcept nogil:
        cdef int t
        cdef uint32_t i
        cdef _bucket *b
        for t in range(_TABLES):
            b = &self.tables[t * _BUCKETS + ((hash >> (_BITS * t)) & _MASK)]
            for i in range(b.size):
                if b.ids[i] == id:
                    b.size -= 1
                    b.hashes[i] = b.hashes[b.size]
                    b.ids[i] = b.ids[b.size]
                    break

    # -- mutation (write lock held) --------------------------------------------

    cdef int _grow_entries(self, size_t cap) noexcept nogil:
        """The parallel hash and id arrays resized to ``cap`` entries."""
        cdef uint64_t *hashes = <uint64_t *>realloc(self.hashes, cap * sizeof(uint64_t))
        cdef int64_t *ids
        if hashes == NULL:
            return -1
        self.hashes = hashes
        ids = <int64_t *>realloc(self.ids, cap * sizeof(int64_t))
        if ids == NULL:
            return -1
        self.ids = ids
        self.cap = cap
        return 0

    cdef int _reserve(self, const uint64_t *hashes, size_t count) noexcept nogil:
        """Room for count more entries: one allocation per bucket and array."""
        cdef size_t i, cap, total = self.n + count
        cdef int t
        cdef uint32_t want
        cdef uint32_t *need
        if total > self.cap and self._grow_entries(total) != 0:
            return -1
        cap = self.map_cap
        while total * 2 > cap:
            cap *= 2
        if cap != self.map_cap and self._map_grow(cap) != 0:
            return -1
        need = <uint32_t *>calloc(_TABLES * _BUCKETS, sizeof(uint32_t))
        if need == NULL:
            return -1
        for i in range(count):
            for t in range(_TABLES):
                need[t * _BUCKETS + ((hashes[i] >> (_BITS * t)) & _MASK)] += 1
        for i in range(_TABLES * _BUCKETS):
            want = self.tables[i].size + need[i]
            if want > self.tables[i].cap and self._bucket_grow(&self.tables[i], want) != 0:
                free(need)
                return -1
        free(need)
        return 0

    cdef int _add(self, int64_t id, uint64_t hash) noexcept nogil:
        """0: added, 1: replaced, -1: out of memory."""
        cdef size_t i
        cdef int64_t slot
        i = self._map_find(id)
        slot = self.map_slots[i]
        if slot >= 0:
            if self.hashes[slot] != hash:
                self._bucket_remove(self.hashes[slot], id)
                if self._bucket_add(hash, id) != 0:
                    self._bucket_add(self.hashes[slot], id)
                    return -1
                self.hashes[slot] = hash
            return 1
        if self.n == self.cap and self._grow_entries(self.cap * 2 if self.cap else 1024) != 0:
            return -1
        if (self.n + 1) * 2 > self.map_cap:
            if self._map_grow(self.map_cap * 2) != 0:
                return -1
            i = self._map_find(id)
        if self._bucket_add(hash, id) != 0:
            self._bucket_remove(hash, id)
            return -1
        self.hashes[self.n] = hash
        self.ids[self.n] = id
        self.map_keys[i] = id
        self.map_slots[i] = <int64_t>self.n
        self.n += 1
        return 0

    cdef bint _remove(self, int64_t id) noexcept nogil:
        cdef size_t i = self._map_find(id), last
        cdef int64_t slot = self.map_slots[i]
        if slot < 0:
            return False
        self._bucket_remove(self.hashes[slot], id)
        self._map_delete_at(i)
        last = self.n - 1
        if <size_t>slot != last:
            self.hashes[slot] = self.hashes[last]
            self.ids[slot] = self.ids[last]
            self.map_slots[self._map_find(self.ids[slot])] = slot
        self.n -= 1
        return True

    # -- searches (read lock held) ---------------------------------------------

    cdef int _check_bucket(self, const _bucket *b, uint64_t q, int t, int d, int max_dist,
                           _hits *out) noexcept nogil:
        cdef uint32_t i
        cdef int u, dt, dist
        cdef uint64_t x
        cdef bint first
        for i in range(b.size):
            x = b.hashes[i] ^ q
            first = True
            for u in range(_TABLES):
                if u == t:
                    continue
                dt = pf_popcount64((x >> (_BITS * u)) & _MASK)
                if dt < d or (dt == d and u < t):
                    first = False
                    break
            if first:
                dist = pf_popcount64(x)
                if dist <= max_dist and _push(out, b.ids[i], dist) != 0:
                    return -1
        return 0

    cdef int _probe_layer(self, uint64_t q, int d, int max_dist, _hits *out) noexcept nogil:
        """Entries first reachable at substring distance d, within max_dist.

        Buckets are taken in batches: their headers are prefetched, then their
        hashes, then they are read, so the cache misses overlap."""
        cdef int t, count, j
        cdef uint32_t m, qs
        cdef _bucket *batch[_BATCH]
        for t in range(_TABLES):
            qs = (q >> (_BITS * t)) & _MASK
            m = (1u << d) - 1
            count = 0
            while True:
                batch[count] = &self.tables[t * _BUCKETS + (qs ^ m)]
                pf_prefetch(batch[count])
                count += 1
                if m == 0:
                    m = _MASK + 1
                else:
                    m = _next_mask(m)
                if count == _BATCH or m > _MASK:
                    for j in range(count):
                        pf_prefetch(batch[j].hashes)
                    for j in range(count):
                        if self._check_bucket(batch[j], q, t, d, max_dist, out) != 0:
                            return -1
                    count = 0
                if m > _MASK:
                    break
        return 0

    cdef size_t _layer_entries(self, uint64_t q, int d) noexcept nogil:
        """How many bucket entries the probes of layer d would read."""
        cdef int t
        cdef uint32_t m, qs
        cdef size_t total = 0
        for t in range(_TABLES):
            qs = (q >> (_BITS * t)) & _MASK
            m = (1u << d) - 1
            while m <= _MASK:
                total += self.tables[t * _BUCKETS + (qs ^ m)].size
                if m == 0:
                    break
                m = _next_mask(m)
        return total

    cdef bint _mih_pays(self, uint64_t q, int radius) noexcept nogil:
        cdef int d, layers = radius // _TABLES
        cdef double cost = 0.0, limit = <double>self.n
        for d in range(layers + 1):
            cost += _PROBE_COST * _TABLES * _binomial16[d]
            if cost > limit:
                return False
            cost += _ENTRY_COST * self._layer_entries(q, d)
            if cost > limit:
                return False
        return True

    cdef int _scan(self, uint64_t q, int radius, _hits *out) noexcept nogil:
        cdef size_t start, count, j, n
        cdef uint32_t pos[_SCAN_BLOCK]
        start = 0
        while start < self.n:
            n = self.n - start
            if n > _SCAN_BLOCK:
                n = _SCAN_BLOCK
            count = pf_scan_block(self.hashes + start, n, q, radius, pos)
            for j in range(count):
                if _push(out, self.ids[start + pos[j]],
                         pf_popcount64(self.hashes[start + pos[j]] ^ q)) != 0:
                    return -1
            start += n
        return 0

    cdef int _radius(self, uint64_t q, int radius, int strategy, _hits *out) noexcept nogil:
        cdef int d
        if strategy == _SCAN or radius >= 64 or (
                strategy == _AUTO and not self._mih_pays(q, radius)):
            return self._scan(q, radius, out)
        for d in range(radius // _TABLES + 1):
            if self._probe_layer(q, d, radius, out) != 0:
                return -1
        return 0

    cdef int _nearest_scan(self, uint64_t q, size_t k, _hits *out) noexcept nogil:
        """One pass keeping whatever could still be among the k nearest: the
        distance cutoff drops as matches accumulate, and the vectorised scan
        skips everything beyond it."""
        cdef size_t counts[65]
        cdef size_t below = 0, start, count, j, n, i
        cdef int d, cutoff = 64
        cdef uint32_t pos[_SCAN_BLOCK]
        memset(counts, 0, sizeof(counts))
        start = 0
        while start < self.n:
            n = self.n - start
            if n > _SCAN_BLOCK:
                n = _SCAN_BLOCK
            count = pf_scan_block(self.hashes + start, n, q, cutoff, pos)
            for j in range(count):
                i = start + pos[j]
                d = pf_popcount64(self.hashes[i] ^ q)
                if d > cutoff:
                    continue
                if _push(out, self.ids[i], d) != 0:
                    return -1
                counts[d] += 1
                if d < cutoff:
                    below += 1
                    # hashes at distance < cutoff are enough: lower the cutoff
                    while cutoff > 0 and below >= k:
                        below -= counts[cutoff - 1]
                        cutoff -= 1
            start += n
        return 0

    cdef int _nearest(self, uint64_t q, size_t k, int strategy, _hits *out) noexcept nogil:
        """At least the k nearest (all of them if fewer), unsorted."""
        cdef int d
        cdef size_t i, within
        cdef double cost = 0.0, limit = <double>self.n
        if k >= self.n or strategy == _SCAN:
            return self._nearest_scan(q, k, out)
        for d in range(_BITS + 1):
            if strategy == _AUTO:
                cost += (_PROBE_COST * _TABLES * _binomial16[d]
                         + _ENTRY_COST * self._layer_entries(q, d))
                if cost > limit:
                    out.size = 0
                    return self._nearest_scan(q, k, out)
            if self._probe_layer(q, d, 64, out) != 0:
                return -1
            # every hash within 4d + 3 has been seen by now
            within = 0
            for i in range(out.size):
                if out.items[i].dist <= _TABLES * d + _TABLES - 1:
                    within += 1
            if within >= k:
                # drop what lies beyond the complete part
                within = 0
                for i in range(out.size):
                    if out.items[i].dist <= _TABLES * d + _TABLES - 1:
                        out.items[within] = out.items[i]
                        within += 1
                out.size = within
                return 0
        return 0

    # -- Python interface --------------------------------------------------------

    def __len__(self):
        return self.n

    def add(self, int64_t id, uint64_t hash):
        """Add or replace; True if the id was new."""
        cdef int rc
        with nogil:
            pthread_rwlock_wrlock(&self.lock)
            rc = self._add(id, hash)
            pthread_rwlock_unlock(&self.lock)
        if rc < 0:
            raise MemoryError()
        return rc == 0

    def add_many(self, const int64_t[::1] ids, const uint64_t[::1] hashes):
        """Add or replace pairs in order; returns how many ids were new."""
        cdef Py_ssize_t i, count = ids.shape[0]
        cdef size_t added = 0
        cdef int rc = 0
        if hashes.shape[0] != count:
            raise ValueError("ids and hashes differ in length")
        with nogil:
            pthread_rwlock_wrlock(&self.lock)
            if count > 64:
                rc = self._reserve(&hashes[0], count)
            for i in range(count):
                if rc < 0:
                    break
                rc = self._add(ids[i], hashes[i])
                if rc < 0:
                    break
                if rc == 0:
                    added += 1
            pthread_rwlock_unlock(&self.lock)
        if rc < 0:
            raise MemoryError()
        return added

    def remove(self, int64_t id):
        """True if the id was there."""
        cdef bint found
        with nogil:
            pthread_rwlock_wrlock(&self.lock)
            found = self._remove(id)
            pthread_rwlock_unlock(&self.lock)
        return found

    def get(self, int64_t id):
        """The id's hash, or None."""
        cdef int64_t slot
        cdef uint64_t value = 0
        with nogil:
            pthread_rwlock_rdlock(&self.lock)
            slot = self.map_slots[self._map_find(id)]
            if slot >= 0:
                value = self.hashes[slot]
            pthread_rwlock_unlock(&self.lock)
        return value if slot >= 0 else None

    def search(self, uint64_t hash, int radius, int strategy=_AUTO):
        """[(id, distance)] within radius, sorted by distance then id."""
        cdef _hits out
        cdef int rc
        cdef size_t i
        if radius < 0 or radius > 64 or strategy < 0 or strategy > 2:
            raise ValueError("radius must be 0..64, strategy 0..2")
        out.items = NULL
        out.size = out.cap = 0
        with nogil:
            pthread_rwlock_rdlock(&self.lock)
            rc = self._radius(hash, radius, strategy, &out)
            pthread_rwlock_unlock(&self.lock)
            if rc == 0 and out.size > 1:
                qsort(out.items, out.size, sizeof(_hit), _cmp_hit)
        try:
            if rc != 0:
                raise MemoryError()
            return [(out.items[i].id, out.items[i].dist) for i in range(out.size)]
        finally:
            free(out.items)

    def nearest(self, uint64_t hash, Py_ssize_t k, int strategy=_AUTO):
        """The k nearest [(id, distance)], sorted by distance then id."""
        cdef _hits out
        cdef int rc = 0
        cdef size_t kk, i
        if k < 0 or strategy < 0 or strategy > 2:
            raise ValueError("k must be >= 0, strategy 0..2")
        if k == 0:
            return []
        kk = <size_t>k
        out.items = NULL
        out.size = out.cap = 0
        with nogil:
            pthread_rwlock_rdlock(&self.lock)
            if self.n > 0:
                rc = self._nearest(hash, kk, strategy, &out)
            pthread_rwlock_unlock(&self.lock)
            if rc == 0 and out.size > 1:
                qsort(out.items, out.size, sizeof(_hit), _cmp_hit)
            if out.size > kk:
                out.size = kk
        try:
            if rc != 0:
                raise MemoryError()
            return [(out.items[i].id, out.items[i].dist) for i in range(out.size)]
        finally:
            free(out.items)

    def items(self):
        """[(id, hash)] in storage order."""
        cdef size_t i
        with nogil:
            pthread_rwlock_rdlock(&self.lock)
        try:
            return [(self.ids[i], self.hashes[i]) for i in range(self.n)]
        finally:
            pthread_rwlock_unlock(&self.lock)
