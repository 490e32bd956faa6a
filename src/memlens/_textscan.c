/* Single-pass text scans for the keep-set of tool output (memlens._textscan).
 *
 * lines_with(text, needles[, starts]) -> the lines of text (cut at "\n", without it)
 *     that hold at least one of the ASCII needles (and, given starts, begin with one
 *     of them after their leading whitespace), in text order, each line once: what
 *     gathering the lines that hold each needle with str.find and sorting them by
 *     where they start gives, in one pass instead of one per needle.
 * path_runs(text) -> the distinct pieces, in first-occurrence order, of the words of
 *     text (str.split()'s whitespace) that hold a "/", cut at every ASCII punctuation
 *     mark but . / - _, keeping the pieces that hold a "/": what
 *     " ".join(w for w in text.split() if "/" in w).translate(...).split() filtered
 *     and de-duplicated gives.
 *
 * occurring(needles, haystack) -> the set of needles (a list of str) that occur in
 *     haystack: an index of the haystack's 8-character pieces at every position, each
 *     needle checked at the positions of its rarest piece (among its first 16), so a
 *     summary's thousands of keep-set strings are not each searched for in full.
 *
 * keepset.py keeps the pure-Python versions, used when this extension is missing.
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
#include <string.h>

#define MAX_NEEDLES 32
#define MAX_NEEDLE 32

/* Whether the line [start, end) begins, after its leading whitespace
 * (Py_UNICODE_ISSPACE: str.isspace, which is re's \s), with one of the ASCII str in
 * ``starts`` (NULL: no condition). */
static int
starts_with(int kind, const void *data, Py_ssize_t start, Py_ssize_t end, PyObject *starts)
{
    if (starts == NULL)
        return 1;
    while (start < end && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, start)))
        start++;
    Py_ssize_t count = PyTuple_GET_SIZE(starts);
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *word = PyTuple_GET_ITEM(starts, k);
        Py_ssize_t m = PyUnicode_GET_LENGTH(word);
        const Py_UCS1 *w = PyUnicode_1BYTE_DATA(word);
        if (start + m > end)
            continue;
        Py_ssize_t j = 0;
        while (j < m && PyUnicode_READ(kind, data, start + j) == w[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* the lines-with loop over one string kind (T: its code unit type) */
#define SCAN_LINES(T)                                                              \
    do {                                                                           \
        const T *u = (const T *)data;                                              \
        Py_ssize_t line = 0, i = 0;                                                \
        while (i < n) {                                                            \
            T ch = u[i];                                                           \
            if (ch == '\n') {                                                      \
                line = ++i;                                                        \
                continue;                                                          \
            }                                                                      \
            if (ch >= 128 || !first[ch] ||                                         \
                (i + 1 < n &&                                                      \
                 (u[i + 1] >= 128 ? pair[ch] != ~(uint64_t)0                       \
                                  : !(pair[ch] & ((uint64_t)1 << (u[i + 1] & 63)))))) { \
                i++;                                                               \
                continue;                                                          \
            }                                                                      \
            int hit = 0;                                                           \
            for (Py_ssize_t k = 0; k < count && !hit; k++) {                       \
                if (pat[k][0] != ch || i + len[k] > n)                             \
                    continue;                                                      \
                Py_ssize_t j = 1;                                                  \
                while (j < len[k] && u[i + j] == pat[k][j])                        \
                    j++;                                                           \
                hit = j == len[k];                                                 \
            }                                                                      \
            if (!hit) {                                                            \
                i++;                                                               \
                continue;                                                          \
            }                                                                      \
            Py_ssize_t end = i;                                                    \
            while (end < n && u[end] != '\n')                                      \
                end++;                                                             \
            if (starts_with(kind, data, line, end, starts)) {                      \
                PyObject *s = PyUnicode_Substring(text, line, end);                \
                if (s == NULL || PyList_Append(out, s) < 0) {                      \
                    Py_XDECREF(s);                                                 \
                    failed = 1;                                                    \
                    break;                                                         \
                }                                                                  \
                Py_DECREF(s);                                                      \
            }                                                                      \
            i = end;                                                               \
        }                                                                          \
    } while (0)

/* the same lines when ``starts`` is given and no needle holds a "\n": each line's
 * start is checked first (after its leading whitespace), and only a line that begins
 * with one of ``starts`` is searched for the needles; the others are skipped to their
 * "\n" (memchr for 1-byte text). A definition line is rare, a needle such as "fn "
 * is not, so most lines are never searched. */
#define SCAN_STARTS(T)                                                             \
    do {                                                                           \
        const T *u = (const T *)data;                                              \
        Py_ssize_t line = 0;                                                       \
        while (line <= n) {                                                        \
            Py_ssize_t end;                                                        \
            if (sizeof(T) == 1) {                                                  \
                const void *nl = memchr(u + line, '\n', (size_t)(n - line));       \
                end = nl == NULL ? n : (Py_ssize_t)((const T *)nl - u);            \
            } else {                                                               \
                end = line;                                                        \
                while (end < n && u[end] != '\n')                                  \
                    end++;                                                         \
            }                                                                      \
            if (starts_with(kind, data, line, end, starts)) {                      \
                int hit = 0;                                                       \
                for (Py_ssize_t i = line; i < end && !hit; i++) {                  \
                    T ch = u[i];                                                   \
                    if (ch >= 128 || !first[ch])                                   \
                        continue;                                                  \
                    for (Py_ssize_t k = 0; k < count && !hit; k++) {               \
                        if (pat[k][0] != ch || i + len[k] > end)                   \
                            continue;                                              \
                        Py_ssize_t j = 1;                                          \
                        while (j < len[k] && u[i + j] == pat[k][j])                \
                            j++;                                                   \
                        hit = j == len[k];                                         \
                    }                                                              \
                }                                                                  \
                if (hit) {                                                         \
                    PyObject *s = PyUnicode_Substring(text, line, end);            \
                    if (s == NULL || PyList_Append(out, s) < 0) {                  \
                        Py_XDECREF(s);                                             \
                        failed = 1;                                                \
                        break;                                                     \
                    }                                                              \
                    Py_DECREF(s);                                                  \
                }                                                                  \
            }                                                                      \
            line = end + 1;                                                        \
        }                                                                          \
    } while (0)

static PyObject *
lines_with(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text, *needles, *starts = NULL;
    if (!PyArg_ParseTuple(args, "UO!|O!", &text, &PyTuple_Type, &needles, &PyTuple_Type,
                          &starts) ||
        TEXT_READY(text) < 0)
        return NULL;
    for (Py_ssize_t k = 0; starts != NULL && k < PyTuple_GET_SIZE(starts); k++) {
        PyObject *word = PyTuple_GET_ITEM(starts, k);
        if (!PyUnicode_Check(word) || !PyUnicode_IS_ASCII(word)) {
            PyErr_SetString(PyExc_ValueError, "starts must be ASCII str");
            return NULL;
        }
    }
    Py_ssize_t count = PyTuple_GET_SIZE(needles);
    if (count > MAX_NEEDLES) {
        PyErr_SetString(PyExc_ValueError, "too many needles");
        return NULL;
    }
    unsigned char pat[MAX_NEEDLES][MAX_NEEDLE];
    Py_ssize_t len[MAX_NEEDLES];
    unsigned char first[128] = {0};
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, k);
        if (!PyUnicode_Check(needle) || !PyUnicode_IS_ASCII(needle) ||
            PyUnicode_GET_LENGTH(needle) < 1 || PyUnicode_GET_LENGTH(needle) > MAX_NEEDLE) {
            PyErr_SetString(PyExc_ValueError, "needles must be short non-empty ASCII str");
            return NULL;
        }
        len[k] = PyUnicode_GET_LENGTH(needle);
        memcpy(pat[k], PyUnicode_DATA(needle), (size_t)len[k]);
        first[pat[k][0]] = 1;
    }
    /* the second character, hashed to one of 64 bits per first character: most
     * positions whose first character starts a needle are ruled out by it. A
     * one-character needle is found at every position its character is at. */
    uint64_t pair[128] = {0};
    for (Py_ssize_t k = 0; k < count; k++)
        pair[pat[k][0]] |= len[k] > 1 ? (uint64_t)1 << (pat[k][1] & 63) : ~(uint64_t)0;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int failed = 0;
    int line_first = starts != NULL;
    for (Py_ssize_t k = 0; k < count; k++)
        if (memchr(pat[k], '\n', (size_t)len[k]) != NULL)
            line_first = 0;
    if (line_first) {
        switch (kind) {
        case PyUnicode_1BYTE_KIND:
            SCAN_STARTS(Py_UCS1);
            break;
        case PyUnicode_2BYTE_KIND:
            SCAN_STARTS(Py_UCS2);
            break;
        default:
            SCAN_STARTS(Py_UCS4);
            break;
        }
    } else {
        switch (kind) {
        case PyUnicode_1BYTE_KIND:
            SCAN_LINES(Py_UCS1);
            break;
        case PyUnicode_2BYTE_KIND:
            SCAN_LINES(Py_UCS2);
            break;
        default:
            SCAN_LINES(Py_UCS4);
            break;
        }
    }
    if (failed) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* ASCII punctuation (string.punctuation) but . / - _ */
static const unsigned char path_cut[128] = {
    ['!'] = 1, ['"'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, [':'] = 1, [';'] = 1,
    ['<'] = 1, ['='] = 1, ['>'] = 1, ['?'] = 1, ['@'] = 1, ['['] = 1, ['\\'] = 1,
    [']'] = 1, ['^'] = 1, ['`'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1,
};

static inline int
cuts_path(Py_UCS4 ch)
{
    return ch < 128 && path_cut[ch];
}

/* str.isspace for one code point: a table for ASCII, Python's own test above */
static const unsigned char ascii_space[128] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [0x1c] = 1,
    [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [' '] = 1,
};
#define IS_SPACE(ch) ((ch) < 128 ? ascii_space[(ch)] : Py_UNICODE_ISSPACE(ch))

/* the pieces kept so far, by content (pieces of one text: compared in place) */
typedef struct {
    uint64_t *hash;
    Py_ssize_t *start, *len; /* len 0: empty slot */
    size_t mask, count;
    int kind;
    const char *data;
} PieceSet;

static int
pieces_grow(PieceSet *set)
{
    size_t cap = set->mask ? (set->mask + 1) * 2 : 64;
    uint64_t *hash = PyMem_Calloc(cap, sizeof(uint64_t));
    Py_ssize_t *start = PyMem_Calloc(cap, sizeof(Py_ssize_t));
    Py_ssize_t *len = PyMem_Calloc(cap, sizeof(Py_ssize_t));
    if (hash == NULL || start == NULL || len == NULL) {
        PyMem_Free(hash);
        PyMem_Free(start);
        PyMem_Free(len);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; set->mask && k <= set->mask; k++) {
        if (set->len[k] == 0)
            continue;
        size_t j = (size_t)set->hash[k] & (cap - 1);
        while (len[j])
            j = (j + 1) & (cap - 1);
        hash[j] = set->hash[k];
        start[j] = set->start[k];
        len[j] = set->len[k];
    }
    PyMem_Free(set->hash);
    PyMem_Free(set->start);
    PyMem_Free(set->len);
    set->hash = hash;
    set->start = start;
    set->len = len;
    set->mask = cap - 1;
    return 0;
}

/* one slash-holding piece [p, q): appended to out unless an equal one was */
static int
keep_piece(PyObject *text, Py_ssize_t p, Py_ssize_t q, PieceSet *set, PyObject *out)
{
    if ((set->count + 1) * 2 > set->mask + 1 && pieces_grow(set) < 0)
        return -1;
    const char *at = set->data + (size_t)p * set->kind;
    size_t bytes = (size_t)(q - p) * set->kind;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t k = 0; k < bytes; k++)
        h = (h ^ (unsigned char)at[k]) * 0x100000001B3ull;
    size_t j = (size_t)h & set->mask;
    while (set->len[j]) {
        if (set->hash[j] == h && set->len[j] == q - p &&
            memcmp(set->data + (size_t)set->start[j] * set->kind, at, bytes) == 0)
            return 0;
        j = (j + 1) & set->mask;
    }
    set->hash[j] = h;
    set->start[j] = p;
    set->len[j] = q - p;
    set->count++;
    PyObject *piece = PyUnicode_Substring(text, p, q);
    if (piece == NULL)
        return -1;
    int failed = PyList_Append(out, piece) < 0;
    Py_DECREF(piece);
    return failed ? -1 : 0;
}

#define PATH_RUNS(T)                                                               \
    do {                                                                           \
        const T *u = (const T *)data;                                              \
        Py_ssize_t i = 0;                                                          \
        while (i < n && !failed) {                                                 \
            while (i < n && IS_SPACE(u[i]))                                        \
                i++;                                                               \
            Py_ssize_t start = i;                                                  \
            int slash = 0;                                                         \
            while (i < n && !IS_SPACE(u[i])) {                                     \
                slash |= u[i] == '/';                                              \
                i++;                                                               \
            }                                                                      \
            if (!slash)                                                            \
                continue;                                                          \
            Py_ssize_t p = start;                                                  \
            while (p < i) {                                                        \
                while (p < i && cuts_path(u[p]))                                   \
                    p++;                                                           \
                Py_ssize_t q = p;                                                  \
                int has = 0;                                                       \
                while (q < i && !cuts_path(u[q])) {                                \
                    has |= u[q] == '/';                                            \
                    q++;                                                           \
                }                                                                  \
                if (q > p && has && keep_piece(text, p, q, &set, out) < 0) {       \
                    failed = 1;                                                    \
                    break;                                                         \
                }                                                                  \
                p = q;                                                             \
            }                                                                      \
        }                                                                          \
    } while (0)

static PyObject *
path_runs(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "path_runs() takes a str");
        return NULL;
    }
    if (TEXT_READY(text) < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    PieceSet set = {NULL, NULL, NULL, 0, 0, kind, (const char *)data};
    int failed = out == NULL;
    if (!failed) {
        switch (kind) {
        case PyUnicode_1BYTE_KIND: {
            /* the words holding a slash, found from their slashes (memchr) */
            const Py_UCS1 *u = (const Py_UCS1 *)data;
            Py_ssize_t i = 0;
            while (i < n && !failed) {
                const Py_UCS1 *hit = memchr(u + i, '/', (size_t)(n - i));
                if (hit == NULL)
                    break;
                Py_ssize_t start = hit - u, end = start;
                while (start > i && !IS_SPACE(u[start - 1]))
                    start--;
                while (end < n && !IS_SPACE(u[end]))
                    end++;
                Py_ssize_t p = start;
                while (p < end) {
                    while (p < end && cuts_path(u[p]))
                        p++;
                    Py_ssize_t q = p;
                    int has = 0;
                    while (q < end && !cuts_path(u[q])) {
                        has |= u[q] == '/';
                        q++;
                    }
                    if (q > p && has && keep_piece(text, p, q, &set, out) < 0) {
                        failed = 1;
                        break;
                    }
                    p = q;
                }
                i = end;
            }
            break;
        }
        case PyUnicode_2BYTE_KIND:
            PATH_RUNS(Py_UCS2);
            break;
        default:
            PATH_RUNS(Py_UCS4);
            break;
        }
    }
    PyMem_Free(set.hash);
    PyMem_Free(set.start);
    PyMem_Free(set.len);
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

/* -- occurring(needles, haystack): {n for n in needles if n in haystack} -- */

#define GRAM 8
#define MAX_OFFSETS 16

static inline uint64_t
gram_hash(const Py_UCS4 *p)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < GRAM; k++)
        h = (h ^ p[k]) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

typedef struct {
    uint64_t hash;
    Py_ssize_t head;  /* first position with this hash, -1 = empty slot */
    Py_ssize_t count; /* positions chained from head */
} GramSlot;

static PyObject *
occurring(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *needles, *haystack;
    if (!PyArg_ParseTuple(args, "O!U", &PyList_Type, &needles, &haystack) ||
        TEXT_READY(haystack) < 0)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(haystack);
    PyObject *found = PySet_New(NULL);
    if (found == NULL)
        return NULL;
    Py_UCS4 *hay = NULL, *pat = NULL;
    GramSlot *slots = NULL;
    Py_ssize_t *next = NULL;
    size_t mask = 0;
    Py_ssize_t pat_cap = 0;
    if (n >= GRAM) {
        hay = PyUnicode_AsUCS4Copy(haystack);
        if (hay == NULL)
            goto fail;
        size_t cap = 16;
        while (cap < (size_t)n * 2)
            cap <<= 1;
        mask = cap - 1;
        slots = PyMem_Malloc(cap * sizeof(GramSlot));
        next = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
        if (slots == NULL || next == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (size_t k = 0; k < cap; k++)
            slots[k].head = -1;
        for (Py_ssize_t p = n - GRAM; p >= 0; p--) {
            uint64_t h = gram_hash(hay + p);
            size_t k = (size_t)h & mask;
            while (slots[k].head >= 0 && slots[k].hash != h)
                k = (k + 1) & mask;
            if (slots[k].head < 0) {
                slots[k].hash = h;
                slots[k].count = 0;
                next[p] = -1;
            }
            else
                next[p] = slots[k].head;
            slots[k].head = p;
            slots[k].count++;
        }
    }
    Py_ssize_t count = PyList_GET_SIZE(needles);
    for (Py_ssize_t j = 0; j < count; j++) {
        PyObject *needle = PyList_GET_ITEM(needles, j);
        if (!PyUnicode_Check(needle)) {
            PyErr_SetString(PyExc_TypeError, "occurring() takes a list of str");
            goto fail;
        }
        Py_ssize_t m = PyUnicode_GET_LENGTH(needle);
        int hit = 0;
        if (m > n)
            hit = 0;
        else if (m < GRAM || hay == NULL) {
            Py_ssize_t at = PyUnicode_Find(haystack, needle, 0, n, 1);
            if (at == -2)
                goto fail;
            hit = at >= 0;
        }
        else {
            if (m > pat_cap) {
                PyMem_Free(pat);
                pat = PyMem_Malloc((size_t)m * sizeof(Py_UCS4));
                pat_cap = pat ? m : 0;
                if (pat == NULL) {
                    PyErr_NoMemory();
                    goto fail;
                }
            }
            if (PyUnicode_AsUCS4(needle, pat, m, 0) == NULL)
                goto fail;
            /* the needle's gram with the fewest positions in the haystack */
            Py_ssize_t best = -1, best_count = 0, best_offset = 0;
            Py_ssize_t offsets = m - GRAM + 1 < MAX_OFFSETS ? m - GRAM + 1 : MAX_OFFSETS;
            for (Py_ssize_t o = 0; o < offsets; o++) {
                uint64_t h = gram_hash(pat + o);
                size_t k = (size_t)h & mask;
                while (slots[k].head >= 0 && slots[k].hash != h)
                    k = (k + 1) & mask;
                if (slots[k].head < 0) { /* a gram the haystack lacks */
                    best = -1;
                    best_count = -1;
                    break;
                }
                if (best < 0 || slots[k].count < best_count) {
                    best = slots[k].head;
                    best_count = slots[k].count;
                    best_offset = o;
                }
            }
            for (Py_ssize_t p = best; best_count >= 0 && p >= 0 && !hit; p = next[p]) {
                Py_ssize_t start = p - best_offset;
                hit = start >= 0 && start + m <= n &&
                      memcmp(hay + start, pat, (size_t)m * sizeof(Py_UCS4)) == 0;
            }
        }
        if (hit && PySet_Add(found, needle) < 0)
            goto fail;
    }
    PyMem_Free(hay);
    PyMem_Free(pat);
    PyMem_Free(slots);
    PyMem_Free(next);
    return found;
fail:
    PyMem_Free(hay);
    PyMem_Free(pat);
    PyMem_Free(slots);
    PyMem_Free(next);
    Py_DECREF(found);
    return NULL;
}

static PyMethodDef methods[] = {
    {"lines_with", lines_with, METH_VARARGS,
     "lines_with(text, needles) -> the lines holding a needle, in order, once each"},
    {"path_runs", path_runs, METH_O,
     "path_runs(text) -> distinct slash-holding pieces of the words holding a slash"},
    {"occurring", occurring, METH_VARARGS,
     "occurring(needles, haystack) -> {n for n in needles if n in haystack}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memlens._textscan",
    "Single-pass scans of tool output for the keep-set.", -1, methods,
};

PyMODINIT_FUNC
PyInit__textscan(void)
{
    return PyModule_Create(&module);
}
