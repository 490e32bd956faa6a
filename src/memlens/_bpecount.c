/* Exact BPE token counts for cl100k_base and o200k_base, without building tokens
 * (memlens._bpecount).
 *
 * Counter(ranks, pattern) takes an encoding's mergeable ranks ({bytes: rank}) and the
 * name of its pre-tokenizer ("cl100k" or "o200k"). count(text) then gives exactly
 * len(tiktoken's encode_ordinary(text)):
 *
 *  1. the text is cut into pieces the way the encoding's regex cuts it, by a matcher
 *     written for that one pattern (same alternatives in the same order, the same
 *     possessive and backtracking quantifiers), over code-point classes generated
 *     from unicodedata (_bpeclasses.h);
 *  2. each piece is UTF-8 encoded and counted: 1 when the piece is a token itself,
 *     else by tiktoken's own merge loop (lowest rank first, leftmost on ties);
 *  3. piece counts are cached (agent text repeats its pieces heavily), in a hash map
 *     emptied when it grows past its bounds.
 *
 * count() returns -1 for a text it cannot count exactly: one holding a code point the
 * class table does not know (unassigned in its Unicode version) or a surrogate, which
 * tiktoken's Python wrapper rewrites before encoding. It also returns -1 for a text with
 * a piece longer than LONG_PIECE bytes (a run of thousands of letters or "="): the merge
 * loop is quadratic in the piece's length, where tiktoken is not. The caller then asks
 * tiktoken.
 * Everything runs with the GIL held; memory comes from malloc.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* strings made through the legacy (wstr) API are not "ready" before 3.12 */
#if PY_VERSION_HEX < 0x030C0000
#define TEXT_READY(o) PyUnicode_READY(o)
#else
#define TEXT_READY(o) 0
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_bpeclasses.h"

#define RANK_NONE UINT32_MAX

/* the matchers are inlined at each call with a constant string kind, so that
 * PyUnicode_READ's switch folds away */
#if defined(__GNUC__) || defined(__clang__)
#define BPE_INLINE static inline __attribute__((always_inline))
#else
#define BPE_INLINE static inline
#endif
#define PIECE_CACHE_MAX_BYTES 256      /* longer pieces are counted, not cached */
#define LONG_PIECE 256 /* a text with a longer piece is tiktoken's */
#define PIECE_CACHE_MAX_ENTRIES (1u << 17)
#define PIECE_ARENA_MAX ((size_t)4 << 20)

static inline uint8_t
cls(Py_UCS4 c)
{
    return bpe_stage2[((size_t)bpe_stage1[c >> 8] << 8) | (c & 0xFF)];
}

static inline uint64_t
hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xC2B2AE3D27D4EB4Full;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x9FB21C651E98DF25ull;
    h ^= h >> 29;
    h *= 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 32;
    return h;
}

/* -- byte string -> value map (open addressing; keys in one arena) -- */

typedef struct {
    uint64_t hash;
    uint32_t off;
    uint32_t len;
    uint32_t value;
    uint32_t used;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;  /* capacity - 1 (a power of two) */
    size_t count;
    uint8_t *arena;
    size_t arena_len, arena_cap;
} BytesMap;

static int
map_init(BytesMap *m, size_t capacity)
{
    size_t cap = 16;
    while (cap < capacity * 2)
        cap <<= 1;
    m->slots = calloc(cap, sizeof(Slot));
    m->mask = cap - 1;
    m->count = 0;
    m->arena_cap = 4096;
    m->arena = malloc(m->arena_cap);
    m->arena_len = 0;
    if (m->slots == NULL || m->arena == NULL) {
        free(m->slots);
        free(m->arena);
        m->slots = NULL;
        m->arena = NULL;
        return -1;
    }
    return 0;
}

static void
map_free(BytesMap *m)
{
    free(m->slots);
    free(m->arena);
    m->slots = NULL;
    m->arena = NULL;
}

static inline uint32_t
map_get(const BytesMap *m, const uint8_t *p, size_t n, uint64_t h)
{
    size_t i = (size_t)h & m->mask;
    for (;;) {
        const Slot *s = &m->slots[i];
        if (!s->used)
            return RANK_NONE;
        if (s->hash == h && s->len == n && memcmp(m->arena + s->off, p, n) == 0)
            return s->value;
        i = (i + 1) & m->mask;
    }
}

static int
map_grow(BytesMap *m)
{
    size_t cap = (m->mask + 1) * 2;
    Slot *slots = calloc(cap, sizeof(Slot));
    if (slots == NULL)
        return -1;
    for (size_t j = 0; j <= m->mask; j++) {
        if (!m->slots[j].used)
            continue;
        size_t i = (size_t)m->slots[j].hash & (cap - 1);
        while (slots[i].used)
            i = (i + 1) & (cap - 1);
        slots[i] = m->slots[j];
    }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return 0;
}

/* Insert a key known to be absent. */
static int
map_put(BytesMap *m, const uint8_t *p, size_t n, uint64_t h, uint32_t value)
{
    if ((m->count + 1) * 2 > m->mask + 1 && map_grow(m) < 0)
        return -1;
    if (m->arena_len + n > m->arena_cap) {
        size_t cap = m->arena_cap;
        while (m->arena_len + n > cap)
            cap *= 2;
        uint8_t *arena = realloc(m->arena, cap);
        if (arena == NULL)
            return -1;
        m->arena = arena;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, p, n);
    size_t i = (size_t)h & m->mask;
    while (m->slots[i].used)
        i = (i + 1) & m->mask;
    m->slots[i].hash = h;
    m->slots[i].off = (uint32_t)m->arena_len;
    m->slots[i].len = (uint32_t)n;
    m->slots[i].value = value;
    m->slots[i].used = 1;
    m->arena_len += n;
    m->count++;
    return 0;
}

static void
map_clear(BytesMap *m)
{
    memset(m->slots, 0, (m->mask + 1) * sizeof(Slot));
    m->count = 0;
    m->arena_len = 0;
}

/* -- the counter -- */

enum { PAT_CL100K = 1, PAT_O200K = 2 };

typedef struct {
    size_t start;
    uint32_t rank;
} Part;

#define SHORT_BITS 16

typedef struct {
    uint64_t key; /* 0: empty */
    uint32_t count;
} ShortSlot;

typedef struct {
    PyObject_HEAD
    int pattern;
    ShortSlot *shorts; /* 1 << SHORT_BITS slots */
    BytesMap ranks;
    BytesMap pieces;
    uint8_t *buf;  /* one piece's UTF-8 bytes */
    size_t buf_cap;
    Part *parts;
    size_t parts_cap;
    unsigned long long hits, misses;
} Counter;

static inline uint32_t
rank_of(const Counter *c, const uint8_t *p, size_t n)
{
    return map_get(&c->ranks, p, n, hash_bytes(p, n));
}

/* tiktoken's _byte_pair_merge, returning only how many parts remain. */
static Py_ssize_t
merge_count(Counter *c, const uint8_t *piece, size_t n)
{
    if (n + 1 > c->parts_cap) {
        size_t cap = c->parts_cap ? c->parts_cap : 64;
        while (cap < n + 1)
            cap *= 2;
        Part *parts = realloc(c->parts, cap * sizeof(Part));
        if (parts == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->parts = parts;
        c->parts_cap = cap;
    }
    Part *parts = c->parts;
    size_t len = 0;
    uint32_t min_rank = RANK_NONE;
    size_t min_i = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = rank_of(c, piece + i, 2);
        if (r < min_rank) {
            min_rank = r;
            min_i = i;
        }
        parts[len].start = i;
        parts[len].rank = r;
        len++;
    }
    parts[len].start = n - 1;
    parts[len].rank = RANK_NONE;
    len++;
    parts[len].start = n;
    parts[len].rank = RANK_NONE;
    len++;
#define GET_RANK(i)                                                              \
    ((i) + 3 < len ? rank_of(c, piece + parts[(i)].start,                        \
                             parts[(i) + 3].start - parts[(i)].start)             \
                   : RANK_NONE)
    while (min_rank != RANK_NONE) {
        size_t i = min_i;
        if (i > 0)
            parts[i - 1].rank = GET_RANK(i - 1);
        parts[i].rank = GET_RANK(i);
        memmove(parts + i + 1, parts + i + 2, (len - i - 2) * sizeof(Part));
        len--;
        min_rank = RANK_NONE;
        for (size_t j = 0; j + 1 < len; j++) {
            if (parts[j].rank < min_rank) {
                min_rank = parts[j].rank;
                min_i = j;
            }
        }
    }
#undef GET_RANK
    return (Py_ssize_t)len - 1;
}

static Py_ssize_t piece_count_mapped(Counter *c, const uint8_t *p, size_t n);

static Py_ssize_t
piece_count(Counter *c, const uint8_t *p, size_t n)
{
    if (n == 1)
        return 1;
    /* a piece of 2-7 bytes is its own key (bytes and length in one word): looked up
     * in a direct-mapped table in front of the piece map */
    uint64_t key = 0;
    ShortSlot *slot = NULL;
    if (n < 8) {
        memcpy(&key, p, n);
        key |= (uint64_t)n << 56;
        slot = &c->shorts[(size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - SHORT_BITS))];
        if (slot->key == key) {
            c->hits++;
            return slot->count;
        }
    }
    Py_ssize_t found = piece_count_mapped(c, p, n);
    if (slot != NULL && found >= 0) {
        slot->key = key;
        slot->count = (uint32_t)found;
    }
    return found;
}

static Py_ssize_t
piece_count_mapped(Counter *c, const uint8_t *p, size_t n)
{
    uint64_t h = hash_bytes(p, n);
    int cacheable = n <= PIECE_CACHE_MAX_BYTES;
    if (cacheable) {
        uint32_t v = map_get(&c->pieces, p, n, h);
        if (v != RANK_NONE) {
            c->hits++;
            return v;
        }
    }
    c->misses++;
    Py_ssize_t tokens;
    if (map_get(&c->ranks, p, n, h) != RANK_NONE)
        tokens = 1;
    else
        tokens = merge_count(c, p, n);
    if (tokens < 0)
        return -1;
    if (cacheable) {
        if (c->pieces.count >= PIECE_CACHE_MAX_ENTRIES ||
            c->pieces.arena_len + n > PIECE_ARENA_MAX)
            map_clear(&c->pieces);
        if (map_put(&c->pieces, p, n, h, (uint32_t)tokens) < 0) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return tokens;
}

/* -- pre-tokenizers: the end of the piece that starts at i (i < n) -- */

#define CH(k) PyUnicode_READ(kind, data, (k))
#define CL(k) cls(CH(k))

static inline int
is_crlf(Py_UCS4 ch)
{
    return ch == '\r' || ch == '\n';
}

/* [^\r\n\p{L}\p{N}] */
static inline int
is_pre(Py_UCS4 ch, uint8_t f)
{
    return !(f & (BPE_F_L | BPE_F_N)) && !is_crlf(ch);
}

/* [^\s\p{L}\p{N}] */
static inline int
is_punct(uint8_t f)
{
    return !(f & (BPE_F_L | BPE_F_N | BPE_F_S));
}

/* the case-insensitive letter of a contraction: s also matches U+017F (long s), as
 * Unicode simple case folding has it */
static inline int
ci(Py_UCS4 ch, char lower)
{
    if (ch < 128)
        return (ch | 0x20) == (Py_UCS4)lower;
    return lower == 's' && ch == 0x17F;
}

/* whitespace run length from i */
BPE_INLINE Py_ssize_t
space_run(int kind, const void *data, Py_ssize_t n, Py_ssize_t i)
{
    Py_ssize_t j = i;
    while (j < n && (CL(j) & BPE_F_S))
        j++;
    return j - i;
}

/* \s*[\r\n] (cl100k) or \s*[\r\n]+ (o200k) from i, where a whitespace run of length w
 * starts: the end after the run's last line break, or -1 */
BPE_INLINE Py_ssize_t
space_to_break(int kind, const void *data, Py_ssize_t i, Py_ssize_t w)
{
    for (Py_ssize_t k = w - 1; k >= 0; k--)
        if (is_crlf(CH(i + k)))
            return i + k + 1;
    return -1;
}

BPE_INLINE Py_ssize_t
next_cl100k(int kind, const void *data, Py_ssize_t n, Py_ssize_t i)
{
    Py_UCS4 ch = CH(i);
    uint8_t f = cls(ch);
    /* '(?i:[sdmt]|ll|ve|re) */
    if (ch == '\'' && i + 1 < n) {
        Py_UCS4 a = CH(i + 1);
        if (ci(a, 's') || ci(a, 'd') || ci(a, 'm') || ci(a, 't'))
            return i + 2;
        if (i + 2 < n) {
            Py_UCS4 b = CH(i + 2);
            if ((ci(a, 'l') && ci(b, 'l')) || (ci(a, 'v') && ci(b, 'e')) ||
                (ci(a, 'r') && ci(b, 'e')))
                return i + 3;
        }
    }
    /* [^\r\n\p{L}\p{N}]?+\p{L}++ */
    {
        Py_ssize_t s = i;
        if (is_pre(ch, f))
            s = i + 1;
        if (s < n && (CL(s) & BPE_F_L)) {
            Py_ssize_t j = s + 1;
            while (j < n && (CL(j) & BPE_F_L))
                j++;
            return j;
        }
    }
    /* \p{N}{1,3}+ */
    if (f & BPE_F_N) {
        Py_ssize_t j = i + 1;
        while (j < n && j < i + 3 && (CL(j) & BPE_F_N))
            j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]++[\r\n]*+ */
    {
        Py_ssize_t s = -1;
        if (ch == ' ' && i + 1 < n && is_punct(CL(i + 1)))
            s = i + 1;
        else if (is_punct(f))
            s = i;
        if (s >= 0) {
            Py_ssize_t j = s + 1;
            while (j < n && is_punct(CL(j)))
                j++;
            while (j < n && is_crlf(CH(j)))
                j++;
            return j;
        }
    }
    /* what is left starts with whitespace */
    Py_ssize_t w = space_run(kind, data, n, i);
    if (i + w == n) /* \s++$ */
        return n;
    Py_ssize_t e = space_to_break(kind, data, i, w); /* \s*[\r\n] */
    if (e >= 0)
        return e;
    if (w >= 2) /* \s+(?!\S) */
        return i + w - 1;
    return i + 1; /* \s */
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)? at j: its length */
BPE_INLINE Py_ssize_t
contraction_o200k(int kind, const void *data, Py_ssize_t n, Py_ssize_t j)
{
    if (j + 1 >= n || CH(j) != '\'')
        return 0;
    Py_UCS4 a = CH(j + 1);
    if (ci(a, 's') || ci(a, 't') || ci(a, 'm') || ci(a, 'd'))
        return 2;
    if (j + 2 < n) {
        Py_UCS4 b = CH(j + 2);
        if ((ci(a, 'r') && ci(b, 'e')) || (ci(a, 'v') && ci(b, 'e')) ||
            (ci(a, 'l') && ci(b, 'l')))
            return 3;
    }
    return 0;
}

BPE_INLINE Py_ssize_t
next_o200k(int kind, const void *data, Py_ssize_t n, Py_ssize_t i)
{
    Py_UCS4 ch = CH(i);
    uint8_t f = cls(ch);
    int pre = is_pre(ch, f);
    /* [^\r\n\p{L}\p{N}]?[UP]*[LO]+'contraction? with UP = Lu Lt Lm Lo M and
     * LO = Ll Lm Lo M: the optional first character taken first, then the longest UP
     * run that leaves a LO character after it */
    for (int take = pre; take >= 0; take--) {
        Py_ssize_t s = i + take;
        Py_ssize_t u = s;
        while (u < n && (CL(u) & BPE_F_UP))
            u++;
        for (Py_ssize_t k = u; k >= s; k--) {
            if (k < n && (CL(k) & BPE_F_LO)) {
                Py_ssize_t j = k + 1;
                while (j < n && (CL(j) & BPE_F_LO))
                    j++;
                return j + contraction_o200k(kind, data, n, j);
            }
        }
    }
    /* [^\r\n\p{L}\p{N}]?[UP]+[LO]*'contraction? */
    for (int take = pre; take >= 0; take--) {
        Py_ssize_t s = i + take;
        Py_ssize_t j = s;
        while (j < n && (CL(j) & BPE_F_UP))
            j++;
        if (j > s) {
            while (j < n && (CL(j) & BPE_F_LO))
                j++;
            return j + contraction_o200k(kind, data, n, j);
        }
    }
    /* \p{N}{1,3} */
    if (f & BPE_F_N) {
        Py_ssize_t j = i + 1;
        while (j < n && j < i + 3 && (CL(j) & BPE_F_N))
            j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n/]* */
    {
        Py_ssize_t s = -1;
        if (ch == ' ' && i + 1 < n && is_punct(CL(i + 1)))
            s = i + 1;
        else if (is_punct(f))
            s = i;
        if (s >= 0) {
            Py_ssize_t j = s + 1;
            while (j < n && is_punct(CL(j)))
                j++;
            while (j < n && (is_crlf(CH(j)) || CH(j) == '/'))
                j++;
            return j;
        }
    }
    Py_ssize_t w = space_run(kind, data, n, i);
    Py_ssize_t e = space_to_break(kind, data, i, w); /* \s*[\r\n]+ */
    if (e >= 0)
        return e;
    if (i + w == n) /* \s+(?!\S) */
        return n;
    if (w >= 2)
        return i + w - 1;
    return i + w; /* \s+ */
}

#undef CL
#undef CH

/* Count one text; -1 with no error set: not countable here; -2: an error is set. */
static Py_ssize_t
count_text(Counter *c, PyObject *text)
{
    if (TEXT_READY(text) < 0)
        return -2;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int ascii = PyUnicode_IS_ASCII(text);
    if (!ascii) {
        /* unknown code points and surrogates: tiktoken's business */
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, k);
            if (ch >= 128 && (cls(ch) & BPE_F_UNK))
                return -1;
        }
    }
    Py_ssize_t total = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t e;
        int cl = c->pattern == PAT_CL100K;
        switch (kind) {
        case PyUnicode_1BYTE_KIND:
            e = cl ? next_cl100k(PyUnicode_1BYTE_KIND, data, n, i)
                   : next_o200k(PyUnicode_1BYTE_KIND, data, n, i);
            break;
        case PyUnicode_2BYTE_KIND:
            e = cl ? next_cl100k(PyUnicode_2BYTE_KIND, data, n, i)
                   : next_o200k(PyUnicode_2BYTE_KIND, data, n, i);
            break;
        default:
            e = cl ? next_cl100k(PyUnicode_4BYTE_KIND, data, n, i)
                   : next_o200k(PyUnicode_4BYTE_KIND, data, n, i);
            break;
        }
        const uint8_t *p;
        size_t len;
        if (ascii) {
            p = (const uint8_t *)data + i;
            len = (size_t)(e - i);
        }
        else {
            size_t need = (size_t)(e - i) * 4;
            if (need > c->buf_cap) {
                size_t cap = c->buf_cap ? c->buf_cap : 256;
                while (cap < need)
                    cap *= 2;
                uint8_t *buf = realloc(c->buf, cap);
                if (buf == NULL) {
                    PyErr_NoMemory();
                    return -2;
                }
                c->buf = buf;
                c->buf_cap = cap;
            }
            uint8_t *o = c->buf;
            for (Py_ssize_t k = i; k < e; k++) {
                Py_UCS4 ch = PyUnicode_READ(kind, data, k);
                if (ch < 0x80)
                    *o++ = (uint8_t)ch;
                else if (ch < 0x800) {
                    *o++ = (uint8_t)(0xC0 | (ch >> 6));
                    *o++ = (uint8_t)(0x80 | (ch & 0x3F));
                }
                else if (ch < 0x10000) {
                    *o++ = (uint8_t)(0xE0 | (ch >> 12));
                    *o++ = (uint8_t)(0x80 | ((ch >> 6) & 0x3F));
                    *o++ = (uint8_t)(0x80 | (ch & 0x3F));
                }
                else {
                    *o++ = (uint8_t)(0xF0 | (ch >> 18));
                    *o++ = (uint8_t)(0x80 | ((ch >> 12) & 0x3F));
                    *o++ = (uint8_t)(0x80 | ((ch >> 6) & 0x3F));
                    *o++ = (uint8_t)(0x80 | (ch & 0x3F));
                }
            }
            p = c->buf;
            len = (size_t)(o - c->buf);
        }
        if (len > LONG_PIECE)
            return -1; /* the merge loop is quadratic: tiktoken is faster on these */
        Py_ssize_t t = piece_count(c, p, len);
        if (t < 0)
            return -2;
        total += t;
        i = e;
    }
    return total;
}

static int
Counter_init(Counter *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ranks", "pattern", NULL};
    PyObject *ranks;
    const char *pattern;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!s", kwlist, &PyDict_Type, &ranks,
                                     &pattern))
        return -1;
    if (strcmp(pattern, "cl100k") == 0)
        self->pattern = PAT_CL100K;
    else if (strcmp(pattern, "o200k") == 0)
        self->pattern = PAT_O200K;
    else {
        PyErr_Format(PyExc_ValueError, "unknown pattern %s (cl100k or o200k)", pattern);
        return -1;
    }
    map_free(&self->ranks);
    map_free(&self->pieces);
    free(self->shorts);
    self->shorts = calloc((size_t)1 << SHORT_BITS, sizeof(ShortSlot));
    if (self->shorts == NULL || map_init(&self->ranks, (size_t)PyDict_GET_SIZE(ranks)) < 0 ||
        map_init(&self->pieces, 1 << 14) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int bytes_seen[256] = {0};
    while (PyDict_Next(ranks, &pos, &key, &value)) {
        if (!PyBytes_Check(key) || !PyLong_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "ranks must map bytes to int");
            return -1;
        }
        unsigned long r = PyLong_AsUnsignedLong(value);
        if (PyErr_Occurred())
            return -1;
        if (r >= RANK_NONE) {
            PyErr_SetString(PyExc_ValueError, "rank out of range");
            return -1;
        }
        const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(key);
        size_t n = (size_t)PyBytes_GET_SIZE(key);
        if (n == 1)
            bytes_seen[p[0]] = 1;
        uint64_t h = hash_bytes(p, n);
        if (map_get(&self->ranks, p, n, h) != RANK_NONE)
            continue;
        if (map_put(&self->ranks, p, n, h, (uint32_t)r) < 0) {
            PyErr_NoMemory();
            return -1;
        }
    }
    /* tiktoken assumes every single byte is a token; so does the merge loop */
    for (int b = 0; b < 256; b++) {
        if (!bytes_seen[b]) {
            PyErr_SetString(PyExc_ValueError, "ranks lack a single-byte token");
            return -1;
        }
    }
    self->hits = self->misses = 0;
    return 0;
}

static void
Counter_dealloc(Counter *self)
{
    map_free(&self->ranks);
    map_free(&self->pieces);
    free(self->shorts);
    free(self->buf);
    free(self->parts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Counter_count(Counter *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "count() takes a str");
        return NULL;
    }
    if (self->ranks.slots == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Counter not initialised");
        return NULL;
    }
    Py_ssize_t t = count_text(self, text);
    if (t == -2)
        return NULL;
    return PyLong_FromSsize_t(t);
}

static PyObject *
Counter_count_many(Counter *self, PyObject *texts)
{
    PyObject *seq = PySequence_Fast(texts, "count_many() takes a sequence of str");
    if (seq == NULL)
        return NULL;
    if (self->ranks.slots == NULL) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_RuntimeError, "Counter not initialised");
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        if (!PyUnicode_Check(items[k])) {
            PyErr_SetString(PyExc_TypeError, "count_many() takes a sequence of str");
            goto fail;
        }
        Py_ssize_t t = count_text(self, items[k]);
        if (t == -2)
            goto fail;
        PyObject *v = PyLong_FromSsize_t(t);
        if (v == NULL)
            goto fail;
        PyList_SET_ITEM(out, k, v);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
Counter_clear(Counter *self, PyObject *Py_UNUSED(ignored))
{
    if (self->pieces.slots != NULL)
        map_clear(&self->pieces);
    if (self->shorts != NULL)
        memset(self->shorts, 0, ((size_t)1 << SHORT_BITS) * sizeof(ShortSlot));
    self->hits = self->misses = 0;
    Py_RETURN_NONE;
}

static PyObject *
Counter_stats(Counter *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{s:n,s:K,s:K,s:n}", "pieces", (Py_ssize_t)self->pieces.count,
                         "hits", self->hits, "misses", self->misses, "ranks",
                         (Py_ssize_t)self->ranks.count);
}

static PyMethodDef Counter_methods[] = {
    {"count", (PyCFunction)Counter_count, METH_O,
     "count(text) -> exact token count, or -1 when tiktoken must count this text"},
    {"count_many", (PyCFunction)Counter_count_many, METH_O,
     "count_many(texts) -> list of count(text)"},
    {"clear", (PyCFunction)Counter_clear, METH_NOARGS, "forget the cached piece counts"},
    {"stats", (PyCFunction)Counter_stats, METH_NOARGS,
     "stats() -> {'pieces', 'hits', 'misses', 'ranks'}"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "memlens._bpecount.Counter",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Counter(ranks, pattern): exact cl100k/o200k token counts",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_methods = Counter_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memlens._bpecount",
    "Exact cl100k_base / o200k_base token counts (see Counter).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__bpecount(void)
{
    if (PyType_Ready(&CounterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CounterType);
    if (PyModule_AddObject(m, "Counter", (PyObject *)&CounterType) < 0 ||
        PyModule_AddStringConstant(m, "UNICODE_VERSION", BPE_UNICODE_VERSION) < 0) {
        Py_DECREF(&CounterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
