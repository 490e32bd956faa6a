/* The reverse reference graph of the heap, in compact arrays (memlens._heapgraph).
 *
 * One pass calls every node's tp_traverse (what gc.get_referents does) and records
 * the referent of each edge as a 32-bit node rank; a counting sort by referent then
 * gives CSR arrays (offsets per rank, referrer index per edge). Time and memory are
 * linear: ~16 bytes per node (pointer, offset, the referrers' start while building)
 * plus ~48 bytes per 4 KiB page that holds nodes, and 4 bytes per edge once built (8
 * while building). No Python object is created per edge or per node.
 *
 * The lookup of every referent ("is this address a node, and which?") is the hot
 * path. A hash table of one slot per node is far bigger than the caches, so each
 * lookup would be a cache miss; instead the nodes are indexed by the 4 KiB page of
 * their address: a page entry holds one bit per 16-byte slot (objects are 16-byte
 * aligned) and the rank of its first node, so a node's rank is the page's base plus
 * the bits set before its own. The page table is ~20x smaller than a per-node table
 * and a hit never touches the referent itself.
 *
 * Untracked containers (a dict of str -> str, a tuple of ints) are not in
 * gc.get_objects() yet they retain things: they become nodes when first met as a
 * referent, and are traversed in turn. They, nodes at unaligned addresses and nodes
 * added after the build are in a small hash table instead.
 *
 * Everything runs with the GIL held and without calling Python code: the visit
 * callback only reads pointers and writes C arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uintptr_t key; /* object address; 0 = empty slot */
    uint32_t val;  /* node index or rank */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask; /* size - 1; size is a power of two, at most half full */
    size_t used;
} Table;

static inline size_t mix64(uint64_t p) {
    p ^= p >> 33;
    p *= 0xff51afd7ed558ccdULL;
    p ^= p >> 33;
    return (size_t)p;
}

static inline size_t hash_ptr(uintptr_t p) { return mix64((uint64_t)p >> 4); }

static void table_put_slot(Slot *slots, size_t mask, uintptr_t k, uint32_t v) {
    size_t h = hash_ptr(k) & mask;
    while (slots[h].key) h = (h + 1) & mask;
    slots[h].key = k;
    slots[h].val = v;
}

/* Make room for `want` entries at most half full. */
static int table_reserve(Table *t, size_t want) {
    size_t size = t->mask ? t->mask + 1 : 0;
    if (size && want * 2 <= size) return 0;
    size_t new_size = 64;
    while (new_size < want * 2) new_size *= 2;
    Slot *slots = PyMem_RawCalloc(new_size, sizeof(Slot));
    if (!slots) return -1;
    for (size_t i = 0; i < size; i++) {
        if (t->slots[i].key) table_put_slot(slots, new_size - 1, t->slots[i].key, t->slots[i].val);
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->mask = new_size - 1;
    return 0;
}

static inline Py_ssize_t table_find(const Table *t, uintptr_t k) {
    if (!t->mask) return -1;
    size_t h = hash_ptr(k) & t->mask;
    while (t->slots[h].key) {
        if (t->slots[h].key == k) return (Py_ssize_t)t->slots[h].val;
        h = (h + 1) & t->mask;
    }
    return -1;
}

static int table_put(Table *t, uintptr_t k, uint32_t v) {
    if (table_reserve(t, t->used + 1) < 0) return -1;
    table_put_slot(t->slots, t->mask, k, v);
    t->used++;
    return 0;
}

static void table_free(Table *t) {
    PyMem_RawFree(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->used = 0;
}

/* -- The page index: address -> rank for the nodes given at build time -------------- */
static inline unsigned popcount64(uint64_t x) {
#if defined(__POPCNT__) || defined(__ARM_NEON)
    return (unsigned)__builtin_popcountll(x);
#else /* no popcount instruction assumed: the libgcc call costs more than this */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (unsigned)((x * 0x0101010101010101ULL) >> 56);
#endif
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

#define PAGE_SHIFT 12
#define GRAIN_SHIFT 4 /* one bit per 16 bytes: 256 bits per page */
#define GRAIN_MASK (((uintptr_t)1 << GRAIN_SHIFT) - 1)

typedef struct {
    uintptr_t page;    /* address >> PAGE_SHIFT; 0 = empty (page 0 is never mapped) */
    uint32_t base;     /* rank of the page's first node */
    uint8_t before[4]; /* nodes in the words of bits before each word */
    uint64_t bits[4];  /* one bit per 16-byte grain of the page */
} Page;

typedef struct {
    Page *slots;
    size_t mask; /* size - 1; at most half full */
    size_t used;
} PageIndex;

static Page *page_slot(Page *slots, size_t mask, uintptr_t page) {
    size_t h = mix64(page) & mask;
    while (slots[h].page && slots[h].page != page) h = (h + 1) & mask;
    return &slots[h];
}

/* The entry of `page`, inserted if absent (NULL when out of memory). */
static Page *page_get(PageIndex *ix, uintptr_t page) {
    if ((ix->used + 1) * 2 > (ix->mask ? ix->mask + 1 : 0)) {
        size_t size = ix->mask ? (ix->mask + 1) * 2 : 64;
        Page *slots = PyMem_RawCalloc(size, sizeof(Page));
        if (!slots) return NULL;
        for (size_t i = 0; ix->mask && i <= ix->mask; i++) {
            if (ix->slots[i].page) *page_slot(slots, size - 1, ix->slots[i].page) = ix->slots[i];
        }
        PyMem_RawFree(ix->slots);
        ix->slots = slots;
        ix->mask = size - 1;
    }
    Page *pg = page_slot(ix->slots, ix->mask, page);
    if (!pg->page) {
        pg->page = page;
        ix->used++;
    }
    return pg;
}

/* The rank of the node at `addr` (16-byte aligned), or -1. */
static inline Py_ssize_t page_rank(const PageIndex *ix, uintptr_t addr) {
    if (!ix->mask) return -1;
    uintptr_t page = addr >> PAGE_SHIFT;
    size_t h = mix64(page) & ix->mask;
    const Page *pg;
    while ((pg = &ix->slots[h])->page != page) {
        if (!pg->page) return -1;
        h = (h + 1) & ix->mask;
    }
    unsigned grain = (unsigned)((addr >> GRAIN_SHIFT) & 255);
    uint64_t word = pg->bits[grain >> 6];
    uint64_t below = ((uint64_t)1 << (grain & 63)) - 1;
    if (!((word >> (grain & 63)) & 1)) return -1;
    return (Py_ssize_t)pg->base + pg->before[grain >> 6] + popcount64(word & below);
}

typedef struct {
    uintptr_t page;
    Page *entry;
} PageRef;

static int cmp_page(const void *a, const void *b) {
    uintptr_t x = ((const PageRef *)a)->page, y = ((const PageRef *)b)->page;
    return (x > y) - (x < y);
}

/* Number the nodes of every page in address order; returns the count (or -1). */
static Py_ssize_t page_assign_ranks(PageIndex *ix) {
    if (!ix->used) return 0;
    PageRef *order = PyMem_RawMalloc(ix->used * sizeof(PageRef));
    if (!order) return -1;
    size_t k = 0;
    for (size_t i = 0; i <= ix->mask; i++) {
        if (ix->slots[i].page) {
            order[k].page = ix->slots[i].page;
            order[k++].entry = &ix->slots[i];
        }
    }
    /* Address order: nodes met together in the heap get nearby ranks (and offsets).
     * The keys are copied out so that comparing does not read the table. */
    qsort(order, k, sizeof(PageRef), cmp_page);
    uint64_t rank = 0;
    for (size_t i = 0; i < k; i++) {
        Page *pg = order[i].entry;
        pg->base = (uint32_t)rank;
        unsigned before = 0;
        for (int w = 0; w < 4; w++) {
            pg->before[w] = (uint8_t)before;
            before += popcount64(pg->bits[w]);
        }
        rank += before;
    }
    PyMem_RawFree(order);
    return (Py_ssize_t)rank;
}

/* -- The graph ------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    PyObject **nodes; /* strong references (PyMem_Malloc: it may be a list's taken array) */
    Py_ssize_t n, cap;
    PageIndex pages;  /* nodes given at build time, at aligned addresses -> rank */
    Table extra;      /* every other node -> rank */
    Py_ssize_t n_ranks;
    uint32_t *off;    /* built_ranks + 1 offsets into src, by rank of the referent */
    uint32_t *src;    /* node index of the referrer per edge, grouped by referent */
    Py_ssize_t n_edges;
    Py_ssize_t built_ranks; /* ranks covered by off (nodes added later have no edges) */
} Graph;

typedef struct {
    Graph *g;
    uint32_t *dst;   /* rank of the referent per edge, in the order met */
    size_t n_dst, cap_dst;
    uint32_t *start; /* per node index: its first edge in dst (n + 1 once walked) */
    size_t cap_start;
    int failed;
} Build;

static inline int traversable(PyObject *o) {
    return PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse != NULL;
}

static inline Py_ssize_t node_rank(const Graph *g, uintptr_t addr) {
    if (!(addr & GRAIN_MASK)) {
        Py_ssize_t r = page_rank(&g->pages, addr);
        if (r >= 0) return r;
    }
    return table_find(&g->extra, addr);
}

static int grow_nodes(Graph *g) {
    if (g->n < g->cap) return 0;
    Py_ssize_t cap = g->cap ? g->cap * 2 : 1024;
    PyObject **nodes = PyMem_Realloc(g->nodes, cap * sizeof(PyObject *));
    if (!nodes) return -1;
    g->nodes = nodes;
    g->cap = cap;
    return 0;
}

/* Add obj as a node of the extra table (new reference taken); returns its rank. */
static Py_ssize_t add_extra(Graph *g, PyObject *obj) {
    if (g->n_ranks >= (Py_ssize_t)UINT32_MAX - 1 || grow_nodes(g) < 0) return -1;
    if (table_put(&g->extra, (uintptr_t)obj, (uint32_t)g->n_ranks) < 0) return -1;
    Py_INCREF(obj);
    g->nodes[g->n++] = obj;
    return g->n_ranks++;
}

static inline int is_untracked_container(PyObject *o) {
    return PyDict_CheckExact(o) || PyTuple_CheckExact(o) || PyList_CheckExact(o) ||
           PySet_CheckExact(o) || PyFrozenSet_CheckExact(o);
}

static int visit(PyObject *child, void *arg) {
    Build *b = (Build *)arg;
    Graph *g = b->g;
    uintptr_t addr = (uintptr_t)child;
    Py_ssize_t dst = -1;
    if (!(addr & GRAIN_MASK)) dst = page_rank(&g->pages, addr);
    if (dst < 0) {
        /* Not a given node: a container (met before or not), an unaligned node, or none
         * of these (an atom: str, int...), which is the only case that reads child. */
        int container = is_untracked_container(child);
        if (!container && !(addr & GRAIN_MASK)) return 0;
        dst = table_find(&g->extra, addr);
        if (dst < 0) {
            if (!container) return 0;
            dst = add_extra(g, child);
            if (dst < 0) {
                b->failed = 1;
                return -1;
            }
        }
    }
    if (b->n_dst == b->cap_dst) {
        size_t cap = b->cap_dst ? b->cap_dst * 2 : 1 << 16;
        uint32_t *d = PyMem_RawRealloc(b->dst, cap * sizeof(uint32_t));
        if (!d) {
            b->failed = 1;
            return -1;
        }
        b->dst = d;
        b->cap_dst = cap;
    }
    b->dst[b->n_dst++] = (uint32_t)dst;
    return 0;
}

static void graph_clear(Graph *g) {
    PyObject **nodes = g->nodes;
    Py_ssize_t n = g->n;
    g->nodes = NULL;
    g->n = g->cap = 0;
    PyMem_RawFree(g->pages.slots);
    memset(&g->pages, 0, sizeof(g->pages));
    table_free(&g->extra);
    g->n_ranks = 0;
    PyMem_RawFree(g->off);
    PyMem_RawFree(g->src);
    g->off = g->src = NULL;
    g->n_edges = 0;
    g->built_ranks = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 < n) PREFETCH(nodes[i + 8]); /* each refcount is a cache miss */
        Py_DECREF(nodes[i]);
    }
    PyMem_Free(nodes);
}

/* Index the given objects (duplicates dropped, input order kept). owned: the graph
 * holds the items' references (their array is g->nodes, compacted in place); else it
 * takes them in walk(). */
static int index_nodes(Graph *g, PyObject **items, Py_ssize_t count, int owned) {
    size_t pages = 64;
    while (pages < (size_t)count / 32) pages *= 2; /* ~40 nodes a page: one rehash or two */
    g->pages.slots = PyMem_RawCalloc(pages, sizeof(Page));
    if (!g->pages.slots) goto nomem;
    g->pages.mask = pages - 1;
    if (!owned) {
        g->nodes = PyMem_Malloc((count ? count : 1) * sizeof(PyObject *));
        if (!g->nodes) goto nomem;
        g->cap = count ? count : 1;
    }
    Table unaligned = {NULL, 0, 0};
    Page *pg = NULL; /* the last page: neighbours in the list often share it */
    Py_ssize_t i = 0;
    for (; i < count; i++) {
        uintptr_t addr = (uintptr_t)items[i];
        int given_twice;
        if (addr & GRAIN_MASK) {
            given_twice = table_find(&unaligned, addr) >= 0;
            if (!given_twice && table_put(&unaligned, addr, 0) < 0) goto nomem_walking;
        } else {
            if (!pg || pg->page != addr >> PAGE_SHIFT) {
                pg = page_get(&g->pages, addr >> PAGE_SHIFT);
                if (!pg) goto nomem_walking;
            }
            unsigned grain = (unsigned)((addr >> GRAIN_SHIFT) & 255);
            uint64_t bit = (uint64_t)1 << (grain & 63);
            given_twice = (pg->bits[grain >> 6] & bit) != 0;
            pg->bits[grain >> 6] |= bit;
        }
        if (!given_twice) {
            g->nodes[g->n++] = items[i];
        } else if (owned) {
            Py_DECREF(items[i]); /* another reference to it is kept: nothing is freed */
        }
    }
    g->n_ranks = page_assign_ranks(&g->pages);
    if (g->n_ranks < 0 || g->n_ranks >= (Py_ssize_t)UINT32_MAX - 1) goto nomem_walking;
    for (size_t k = 0; unaligned.mask && k <= unaligned.mask; k++) {
        if (!unaligned.slots[k].key) continue;
        if (table_put(&g->extra, unaligned.slots[k].key, (uint32_t)g->n_ranks++) < 0) {
            goto nomem_walking;
        }
    }
    table_free(&unaligned);
    return 0;
nomem_walking:
    table_free(&unaligned);
    if (owned) { /* keep the references not yet indexed, for graph_clear to drop */
        for (; i < count; i++) g->nodes[g->n++] = items[i];
    } else {
        g->n = 0; /* no reference taken yet */
    }
    return -1;
nomem:
    g->n = owned ? count : 0; /* owned: every reference is still in g->nodes */
    return -1;
}

/* The objects whose references are not walked (given by id): a small table behind a
 * 4096-bit filter, so that checking each heap object costs one bit test. */
typedef struct {
    Table ids;
    uint64_t filter[64];
} SkipSet;

static inline unsigned skip_bit(uintptr_t addr) { return (unsigned)((addr >> 4) & 4095); }

static int skipset_load(SkipSet *set, PyObject *skip) {
    memset(set, 0, sizeof(*set));
    if (!skip || skip == Py_None) return 0;
    PyObject *it = PyObject_GetIter(skip);
    if (!it) return -1;
    PyObject *oid;
    while ((oid = PyIter_Next(it)) != NULL) {
        void *p = PyLong_AsVoidPtr(oid);
        Py_DECREF(oid);
        if (p == NULL && PyErr_Occurred()) break;
        if (!p) continue;
        if (table_put(&set->ids, (uintptr_t)p, 0) < 0) {
            PyErr_NoMemory();
            break;
        }
        set->filter[skip_bit((uintptr_t)p) >> 6] |= (uint64_t)1 << (skip_bit((uintptr_t)p) & 63);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        table_free(&set->ids);
        return -1;
    }
    return 0;
}

static inline int skipset_has(const SkipSet *set, const void *obj) {
    uintptr_t addr = (uintptr_t)obj;
    if (!((set->filter[skip_bit(addr) >> 6] >> (skip_bit(addr) & 63)) & 1)) return 0;
    return table_find(&set->ids, addr) >= 0;
}

/* Walk every node (the given ones, then the containers met) recording edge referents. */
static int walk(Graph *g, Build *b, const SkipSet *skip, Py_ssize_t n_given, int owned) {
    b->cap_start = (size_t)g->n + (size_t)g->n / 8 + 1024;
    b->start = PyMem_RawMalloc(b->cap_start * sizeof(uint32_t));
    Py_ssize_t i = 0; /* the given nodes before i hold their reference */
    int failed = b->start == NULL;
    for (; !failed && i < g->n; i++) { /* n grows as containers are met */
        if ((size_t)i + 2 > b->cap_start) {
            size_t cap = b->cap_start * 2;
            uint32_t *start = PyMem_RawRealloc(b->start, cap * sizeof(uint32_t));
            if (!start) {
                failed = 1;
                break;
            }
            b->start = start;
            b->cap_start = cap;
        }
        b->start[i] = (uint32_t)b->n_dst;
        if (i + 8 < g->n) PREFETCH(g->nodes[i + 8]); /* hide the miss on each object */
        PyObject *obj = g->nodes[i];
        if (!owned && i < n_given) Py_INCREF(obj); /* its line is about to be read anyway */
        if (i < n_given && skipset_has(skip, obj)) continue;
        if (!traversable(obj)) continue;
        if (Py_TYPE(obj)->tp_traverse(obj, visit, b) < 0 && b->failed) failed = 1;
        if (b->n_dst >= UINT32_MAX) failed = 1;
    }
    for (Py_ssize_t j = i; !owned && j < n_given; j++) Py_INCREF(g->nodes[j]); /* on failure */
    if (failed) return -1;
    b->start[g->n] = (uint32_t)b->n_dst;
    return 0;
}

/* Counting sort of the edges by referent rank, stable in referrer order. */
static int group_by_referent(Graph *g, Build *b) {
    Py_ssize_t r = g->n_ranks;
    g->off = PyMem_RawCalloc((size_t)r + 1, sizeof(uint32_t));
    g->src = PyMem_RawMalloc((b->n_dst ? b->n_dst : 1) * sizeof(uint32_t));
    if (!g->off || !g->src) return -1;
    const uint32_t *dst = b->dst;
    for (size_t e = 0; e < b->n_dst; e++) g->off[dst[e]]++;
    for (Py_ssize_t k = 1; k < r; k++) g->off[k] += g->off[k - 1]; /* ends of the ranges */
    /* Backwards, so that each range ends up in increasing referrer order. */
    for (Py_ssize_t i = g->n - 1; i >= 0; i--) {
        for (uint32_t e = b->start[i + 1]; e > b->start[i]; e--) {
            g->src[--g->off[dst[e - 1]]] = (uint32_t)i;
        }
    }
    g->off[r] = (uint32_t)b->n_dst;
    g->n_edges = (Py_ssize_t)b->n_dst;
    g->built_ranks = r;
    return 0;
}

/* Graph(objects, skip=(), take=False) -- skip: ids of objects whose own references are
 * not walked; take: objects is a list whose references move into the graph (the list is
 * left empty), which saves a pass over the heap to take them and one to drop them. */
static int graph_init(Graph *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"objects", "skip", "take", NULL};
    PyObject *objects, *skip = NULL;
    int take = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Op", kwlist, &objects, &skip, &take)) {
        return -1;
    }
    graph_clear(self);
    if (take && !PyList_CheckExact(objects)) {
        PyErr_SetString(PyExc_TypeError, "take=True needs objects to be a list");
        return -1;
    }
    PyObject *seq = NULL;
    PyObject **items;
    Py_ssize_t count;
    if (take) {
        /* The list's array becomes the nodes array: its references are ours now. */
        PyListObject *list = (PyListObject *)objects;
        items = list->ob_item;
        count = Py_SIZE(list);
        self->nodes = items;
        self->cap = list->allocated;
        list->ob_item = NULL;
        list->allocated = 0;
        Py_SET_SIZE(list, 0);
    } else {
        seq = PySequence_Fast(objects, "objects must be a sequence");
        if (!seq) return -1;
        items = PySequence_Fast_ITEMS(seq); /* seq keeps them alive until walk() */
        count = PySequence_Fast_GET_SIZE(seq);
    }
    if (count >= (Py_ssize_t)UINT32_MAX - 1) {
        if (take) self->n = count; /* dropped by graph_clear */
        graph_clear(self);
        Py_XDECREF(seq);
        PyErr_SetString(PyExc_OverflowError, "too many objects for a heap graph");
        return -1;
    }
    if (index_nodes(self, items, count, take) < 0) {
        graph_clear(self);
        Py_XDECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t n_given = self->n;
    SkipSet skipped;
    int loaded = skipset_load(&skipped, skip) == 0;
    Build b = {self, NULL, 0, 0, NULL, 0, 0};
    int ok = loaded && walk(self, &b, &skipped, n_given, take) == 0 &&
             group_by_referent(self, &b) == 0;
    if (!loaded && !take) self->n = 0; /* no reference taken yet */
    table_free(&skipped.ids);
    PyMem_RawFree(b.dst);
    PyMem_RawFree(b.start);
    Py_XDECREF(seq);
    if (!ok) {
        graph_clear(self);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void graph_dealloc(Graph *self) {
    graph_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The rank of the node with this id: -1 if none, -2 on error. */
static Py_ssize_t rank_of_id(Graph *self, PyObject *oid) {
    void *p = PyLong_AsVoidPtr(oid);
    if (p == NULL && PyErr_Occurred()) return -2;
    return node_rank(self, (uintptr_t)p);
}

static PyObject *graph_referrers(Graph *self, PyObject *oid) {
    Py_ssize_t r = rank_of_id(self, oid);
    if (r == -2) return NULL;
    if (r < 0 || r >= self->built_ranks) return PyList_New(0);
    uint32_t lo = self->off[r], hi = self->off[r + 1];
    PyObject *out = PyList_New(hi - lo);
    if (!out) return NULL;
    for (uint32_t e = lo; e < hi; e++) {
        PyObject *v = PyLong_FromVoidPtr(self->nodes[self->src[e]]);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, e - lo, v);
    }
    return out;
}

static PyObject *graph_get(Graph *self, PyObject *oid) {
    Py_ssize_t r = rank_of_id(self, oid);
    if (r == -2) return NULL;
    if (r < 0) Py_RETURN_NONE;
    /* A ranked address is a node, and the graph holds a reference to it. */
    PyObject *obj = (PyObject *)PyLong_AsVoidPtr(oid);
    Py_INCREF(obj);
    return obj;
}

static PyObject *graph_add(Graph *self, PyObject *obj) {
    if (node_rank(self, (uintptr_t)obj) >= 0) Py_RETURN_NONE;
    if (add_extra(self, obj) < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *graph_nodes(Graph *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(self->n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Py_INCREF(self->nodes[i]);
        PyList_SET_ITEM(out, i, self->nodes[i]);
    }
    return out;
}

static PyObject *graph_close(Graph *self, PyObject *Py_UNUSED(ignored)) {
    graph_clear(self);
    Py_RETURN_NONE;
}

static PyObject *graph_edges(Graph *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(self->n_edges);
}

static Py_ssize_t graph_len(Graph *self) { return self->n; }

static int graph_contains(Graph *self, PyObject *oid) {
    Py_ssize_t r = rank_of_id(self, oid);
    if (r == -2) return -1;
    return r >= 0;
}

static PyMethodDef graph_methods[] = {
    {"referrers", (PyCFunction)graph_referrers, METH_O, "ids of the nodes referring to id"},
    {"get", (PyCFunction)graph_get, METH_O, "the node with this id, or None"},
    {"add", (PyCFunction)graph_add, METH_O, "add a node (without edges)"},
    {"nodes", (PyCFunction)graph_nodes, METH_NOARGS, "a list of every node"},
    {"close", (PyCFunction)graph_close, METH_NOARGS, "release every node"},
    {NULL}};

static PyGetSetDef graph_getset[] = {
    {"edges", (getter)graph_edges, NULL, "number of edges", NULL}, {NULL}};

static PySequenceMethods graph_as_sequence = {
    .sq_length = (lenfunc)graph_len,
    .sq_contains = (objobjproc)graph_contains,
};

static PyTypeObject GraphType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memlens._heapgraph.Graph",
    .tp_basicsize = sizeof(Graph),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reverse reference graph over a list of objects (CSR arrays).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)graph_init,
    .tp_dealloc = (destructor)graph_dealloc,
    .tp_methods = graph_methods,
    .tp_getset = graph_getset,
    .tp_as_sequence = &graph_as_sequence,
};

/* -- Level scans: the referrers of a few objects, in one pass over the heap ----------
 *
 * A path search from one object needs the referrers of a handful of nodes per
 * breadth-first level, not the whole graph. scan() answers one level with one pass:
 * every object's tp_traverse is called and each referent is looked up in a small
 * table of the level's nodes (cache-hot, no dereference of the referent), which is
 * what gc.get_referrers() does for one object, done for the whole level at once.
 *
 * Untracked containers (a tuple of str) hold only atoms and other untracked tuples,
 * so they are walked only when the level holds such an object or an atom; each is
 * walked at most once per pass.
 */
#define SCAN_SMALL 8

typedef struct {
    Table targets; /* address -> index in out (levels of more than SCAN_SMALL nodes) */
    uintptr_t small[SCAN_SMALL]; /* a small level: compared directly, like get_referrers */
    Py_ssize_t n_small;          /* -1: use the table */
    uintptr_t lo, hi;            /* address range of the level: most referents fall outside */
    Table seen;    /* untracked containers already walked in this pass */
    PyObject *owner;
    PyObject *out; /* one list of referrers per target */
    PyObject **stack;
    size_t n_stack, cap_stack;
    int recurse;
    int failed;
} Scan;

static inline int untracked_container(PyObject *o) {
    return PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && is_untracked_container(o);
}

static inline Py_ssize_t scan_find(const Scan *s, uintptr_t p) {
    if (p < s->lo || p > s->hi) return -1;
    if (s->n_small < 0) return table_find(&s->targets, p);
    for (Py_ssize_t i = 0; i < s->n_small; i++) {
        if (s->small[i] == p) return i;
    }
    return -1;
}

static int scan_visit(PyObject *child, void *arg) {
    Scan *s = (Scan *)arg;
    Py_ssize_t t = scan_find(s, (uintptr_t)child);
    if (t >= 0 && PyList_Append(PyList_GET_ITEM(s->out, t), s->owner) < 0) {
        s->failed = 1;
        return -1;
    }
    if (s->recurse && untracked_container(child) &&
        table_find(&s->seen, (uintptr_t)child) < 0) {
        if (table_put(&s->seen, (uintptr_t)child, 0) < 0) {
            s->failed = 1;
            return -1;
        }
        if (s->n_stack == s->cap_stack) {
            size_t cap = s->cap_stack ? s->cap_stack * 2 : 256;
            PyObject **stack = PyMem_RawRealloc(s->stack, cap * sizeof(PyObject *));
            if (!stack) {
                s->failed = 1;
                return -1;
            }
            s->stack = stack;
            s->cap_stack = cap;
        }
        s->stack[s->n_stack++] = child; /* borrowed: its holder is alive during the pass */
    }
    return 0;
}

static int scan_one(Scan *s, PyObject *obj) {
    if (!traversable(obj)) return 0;
    s->owner = obj;
    if (Py_TYPE(obj)->tp_traverse(obj, scan_visit, s) < 0 && s->failed) return -1;
    while (s->n_stack) {
        PyObject *inner = s->stack[--s->n_stack];
        s->owner = inner;
        if (Py_TYPE(inner)->tp_traverse(inner, scan_visit, s) < 0 && s->failed) return -1;
    }
    return 0;
}

/* scan(objects, targets, skip=()) -> list of lists: the referrers of each target among
 * objects (and the untracked containers they hold), in heap order. skip: ids of
 * objects whose references are not walked. */
static PyObject *heapgraph_scan(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"objects", "targets", "skip", NULL};
    PyObject *objects, *targets, *skip = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!|O", kwlist, &PyList_Type, &objects,
                                     &PyList_Type, &targets, &skip)) {
        return NULL;
    }
    Scan s;
    memset(&s, 0, sizeof(s));
    SkipSet skipped;
    memset(&skipped, 0, sizeof(skipped));
    Py_ssize_t n_targets = PyList_GET_SIZE(targets);
    s.out = PyList_New(n_targets);
    if (!s.out) return NULL;
    s.n_small = n_targets <= SCAN_SMALL ? n_targets : -1;
    s.lo = UINTPTR_MAX;
    s.hi = 0;
    if (s.n_small < 0 && table_reserve(&s.targets, (size_t)n_targets + 1) < 0) goto nomem;
    for (Py_ssize_t i = 0; i < n_targets; i++) {
        PyObject *lst = PyList_New(0);
        if (!lst) goto fail;
        PyList_SET_ITEM(s.out, i, lst);
        PyObject *t = PyList_GET_ITEM(targets, i);
        uintptr_t p = (uintptr_t)t;
        if (p < s.lo) s.lo = p;
        if (p > s.hi) s.hi = p;
        if (s.n_small >= 0) {
            s.small[i] = p; /* a repeated target keeps its first slot */
        } else if (table_find(&s.targets, p) < 0 && table_put(&s.targets, p, (uint32_t)i) < 0) {
            goto nomem;
        }
        if (!PyObject_IS_GC(t) || untracked_container(t)) s.recurse = 1;
    }
    if (skipset_load(&skipped, skip) < 0) goto fail;
    /* objects may not change size while C code walks it: nothing here runs Python code. */
    Py_ssize_t n = PyList_GET_SIZE(objects);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyList_GET_ITEM(objects, i);
        if (skipset_has(&skipped, obj)) continue;
        if (scan_one(&s, obj) < 0) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            goto fail;
        }
    }
    table_free(&s.targets);
    table_free(&s.seen);
    table_free(&skipped.ids);
    PyMem_RawFree(s.stack);
    return s.out;
nomem:
    PyErr_NoMemory();
fail:
    table_free(&s.targets);
    table_free(&s.seen);
    table_free(&skipped.ids);
    PyMem_RawFree(s.stack);
    Py_DECREF(s.out);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))heapgraph_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(objects, targets, skip=()): the referrers of each target, one pass"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_heapgraph", "Compact reverse reference graph.", -1, module_methods};

PyMODINIT_FUNC PyInit__heapgraph(void) {
    if (PyType_Ready(&GraphType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&GraphType);
    if (PyModule_AddObject(m, "Graph", (PyObject *)&GraphType) < 0) {
        Py_DECREF(&GraphType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
