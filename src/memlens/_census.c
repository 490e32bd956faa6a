/* The heap census's walk, dominator tree and retained sizes in C (memlens._census).
 *
 * Census(objects, ignore, roots, substitute) takes gc.get_objects(), the ids of
 * memlens's own objects (not walked, and references to them dropped), the named
 * roots (modules, frames; added as nodes even when the GC does not track them) and
 * {id: stand-in} (an object whose referents are walked instead, for a running frame
 * whose tp_traverse does not visit its locals). It then:
 *
 *  1. walks every node's tp_traverse, adding every referent as a node (str, int and
 *     untracked containers are not in gc.get_objects() but hold memory): forward
 *     edges in CSR form, built in node order so no sort is needed;
 *  2. roots a virtual node 0 at the named roots, then the nodes nothing refers to
 *     (held from C), then any node still unreached (a cycle held only from C);
 *  3. computes immediate dominators with Lengauer-Tarjan (iterative depth-first
 *     search and path compression: no recursion, so a million-long linked list is
 *     fine), O(E log N) whatever the shape of the heap;
 *  4. sizes every node like sys.getsizeof (types that keep object.__sizeof__ are
 *     computed from their basic and item size, calibrated once per type against
 *     sys.getsizeof; others call it) and sums retained sizes up the dominator tree;
 *  5. counts and sizes nodes by type.
 *
 * Its working memory comes from malloc, not PyMem: tracemalloc neither traces it
 * (a census must not show up in the user's own snapshot) nor slows it down. The
 * walk runs with the GIL held and calls no Python code; sizing may call a type's
 * own __sizeof__, after the graph is complete. The GC is disabled meanwhile. Every
 * node is held by a strong reference until close().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

/* -- address -> index map (open addressing, keys and values in separate arrays) -- */

typedef struct {
    uintptr_t *keys; /* 0 = empty */
    uint32_t *vals;
    size_t mask;
    size_t used;
} AddrMap;

static inline size_t addr_hash(uintptr_t p) {
    p = (p >> 4) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(p ^ (p >> 29));
}

static int map_grow(AddrMap *m, size_t want) {
    size_t size = m->mask ? m->mask + 1 : 0;
    if (size && want * 2 <= size) return 0;
    size_t new_size = 256;
    while (new_size < want * 2) new_size <<= 1;
    uintptr_t *keys = calloc(new_size, sizeof(uintptr_t));
    uint32_t *vals = malloc(new_size * sizeof(uint32_t));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < size; i++) {
        if (!m->keys[i]) continue;
        size_t h = addr_hash(m->keys[i]) & (new_size - 1);
        while (keys[h]) h = (h + 1) & (new_size - 1);
        keys[h] = m->keys[i];
        vals[h] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->mask = new_size - 1;
    return 0;
}

static inline uint32_t map_get(const AddrMap *m, uintptr_t k) {
    if (!m->mask) return NONE;
    size_t h = addr_hash(k) & m->mask;
    while (m->keys[h]) {
        if (m->keys[h] == k) return m->vals[h];
        h = (h + 1) & m->mask;
    }
    return NONE;
}

static int map_set(AddrMap *m, uintptr_t k, uint32_t v) {
    if (map_grow(m, m->used + 1) < 0) return -1;
    size_t h = addr_hash(k) & m->mask;
    while (m->keys[h]) {
        if (m->keys[h] == k) {
            m->vals[h] = v;
            return 0;
        }
        h = (h + 1) & m->mask;
    }
    m->keys[h] = k;
    m->vals[h] = v;
    m->used++;
    return 0;
}

static void map_free(AddrMap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* -- the census object ------------------------------------------------------------ */

typedef struct {
    PyTypeObject *type;
    int64_t count, bytes;
    /* How to size an instance: DEFAULT_SIZEOF (object.__sizeof__: basic + item size),
     * C_SIZEOF (the type's own C __sizeof__, called directly: no bound method is
     * made), or CALL (sys.getsizeof); presize is what getsizeof adds (GC header),
     * calibrated on the first instance; -1 until then. */
    int how;
    int64_t presize;
    PyCFunction sizeof_fn;
} TypeRow;

enum { CALL, DEFAULT_SIZEOF, C_SIZEOF };

typedef struct {
    PyObject_HEAD
    PyObject **node; /* node[0] = NULL: the virtual root */
    uint32_t n, cap;
    AddrMap index;
    AddrMap ignore;
    uint32_t *fstart; /* forward CSR: fstart[i]..fstart[i+1] in fdst */
    uint32_t *fdst;
    size_t n_edges, cap_edges;
    uint32_t *kids; /* the virtual root's edges */
    uint32_t n_kids, cap_kids;
    uint32_t *pstart, *psrc; /* reverse CSR, root edges included */
    uint32_t *idom;          /* by node index */
    int64_t *size, *retained;
    int64_t total;
    TypeRow *types;
    uint32_t n_types;
    int failed;
} Census;

static void census_clear(Census *c) {
    PyObject **node = c->node;
    uint32_t n = c->n;
    c->node = NULL;
    c->n = c->cap = 0;
    map_free(&c->index);
    map_free(&c->ignore);
    free(c->fstart);
    free(c->fdst);
    free(c->kids);
    free(c->pstart);
    free(c->psrc);
    free(c->idom);
    free(c->size);
    free(c->retained);
    free(c->types);
    c->fstart = c->fdst = c->kids = c->pstart = c->psrc = c->idom = NULL;
    c->size = c->retained = NULL;
    c->types = NULL;
    c->n_edges = c->cap_edges = 0;
    c->n_kids = c->cap_kids = c->n_types = 0;
    c->total = 0;
    if (node) {
        for (uint32_t i = 1; i < n; i++) Py_DECREF(node[i]);
        free(node);
    }
}

/* The node index of obj, added (strong reference) when new; NONE on failure. */
static uint32_t add_node(Census *c, PyObject *obj) {
    uint32_t found = map_get(&c->index, (uintptr_t)obj);
    if (found != NONE) return found;
    if (c->n >= NONE - 2) return NONE;
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 4096;
        PyObject **node = realloc(c->node, (size_t)cap * sizeof(PyObject *));
        uint32_t *fstart = node ? realloc(c->fstart, ((size_t)cap + 1) * sizeof(uint32_t)) : NULL;
        if (node) c->node = node;
        if (!node || !fstart) return NONE;
        c->fstart = fstart;
        c->cap = cap;
    }
    if (map_set(&c->index, (uintptr_t)obj, c->n) < 0) return NONE;
    Py_INCREF(obj);
    c->node[c->n] = obj;
    return c->n++;
}

typedef struct {
    Census *c;
} Walk;

static int visit(PyObject *child, void *arg) {
    Census *c = ((Walk *)arg)->c;
    if (child == NULL || map_get(&c->ignore, (uintptr_t)child) != NONE) return 0;
    uint32_t dst = add_node(c, child);
    if (dst == NONE) {
        c->failed = 1;
        return -1;
    }
    if (c->n_edges == c->cap_edges) {
        size_t cap = c->cap_edges ? c->cap_edges * 2 : 1 << 16;
        if (cap >= NONE) cap = NONE - 1;
        if (c->n_edges >= cap) {
            c->failed = 1;
            return -1;
        }
        uint32_t *fdst = realloc(c->fdst, cap * sizeof(uint32_t));
        if (!fdst) {
            c->failed = 1;
            return -1;
        }
        c->fdst = fdst;
        c->cap_edges = cap;
    }
    c->fdst[c->n_edges++] = dst;
    return 0;
}

static int add_kid(Census *c, uint32_t v) {
    if (c->n_kids == c->cap_kids) {
        uint32_t cap = c->cap_kids ? c->cap_kids * 2 : 1024;
        uint32_t *kids = realloc(c->kids, (size_t)cap * sizeof(uint32_t));
        if (!kids) return -1;
        c->kids = kids;
        c->cap_kids = cap;
    }
    c->kids[c->n_kids++] = v;
    return 0;
}

/* Steps 1-2: nodes, forward edges, the root's edges. `substitute` maps an id to an
 * object whose referents stand for that object's (a running frame's, whose locals
 * its own tp_traverse does not visit). */
static int build_graph(Census *c, PyObject *objects, PyObject *ignore, PyObject *roots,
                       PyObject *substitute) {
    PyObject *it = PyObject_GetIter(ignore);
    if (!it) return -1;
    PyObject *oid;
    while ((oid = PyIter_Next(it)) != NULL) {
        void *p = PyLong_AsVoidPtr(oid);
        Py_DECREF(oid);
        if (p == NULL && PyErr_Occurred()) break;
        if (map_set(&c->ignore, (uintptr_t)p, 0) < 0) {
            Py_DECREF(it);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    PyObject *seq = PySequence_Fast(objects, "objects must be a sequence");
    if (!seq) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    /* Referents not in gc.get_objects() (str, int...) roughly double the nodes. */
    c->cap = (uint32_t)(count < 4096 ? 4096 : count);
    c->node = malloc((size_t)c->cap * sizeof(PyObject *));
    c->fstart = malloc(((size_t)c->cap + 1) * sizeof(uint32_t));
    if (!c->node || !c->fstart || map_grow(&c->index, (size_t)count * 2 + 64) < 0) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    c->node[0] = NULL; /* the virtual root */
    c->n = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (map_get(&c->ignore, (uintptr_t)items[i]) != NONE) continue;
        if (add_node(c, items[i]) == NONE) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(seq);
    seq = PySequence_Fast(roots, "roots must be a sequence");
    if (!seq) return -1;
    count = PySequence_Fast_GET_SIZE(seq);
    items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (map_get(&c->ignore, (uintptr_t)items[i]) != NONE) continue;
        uint32_t v = add_node(c, items[i]);
        if (v == NONE || add_kid(c, v) < 0) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(seq);
    AddrMap subst = {0};
    PyObject *sub_items = NULL;
    if (substitute && substitute != Py_None) {
        sub_items = PyMapping_Items(substitute);
        if (!sub_items) return -1;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(sub_items); k++) {
            PyObject *pair = PyList_GET_ITEM(sub_items, k);
            void *p = PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2
                          ? PyLong_AsVoidPtr(PyTuple_GET_ITEM(pair, 0))
                          : NULL;
            if (p == NULL || map_set(&subst, (uintptr_t)p, (uint32_t)k) < 0) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "substitute: {id: object}");
                Py_DECREF(sub_items);
                map_free(&subst);
                return -1;
            }
        }
    }
    Walk w = {c};
    c->fstart[0] = 0;
    for (uint32_t i = 1; i < c->n; i++) { /* n grows as referents are met */
        c->fstart[i] = (uint32_t)c->n_edges;
        PyObject *obj = c->node[i];
        if (subst.used) {
            uint32_t k = map_get(&subst, (uintptr_t)obj);
            if (k != NONE) obj = PyTuple_GET_ITEM(PyList_GET_ITEM(sub_items, k), 1);
        }
        traverseproc trav = Py_TYPE(obj)->tp_traverse;
        if (PyObject_IS_GC(obj) && trav != NULL && trav(obj, visit, &w) < 0 && c->failed) break;
    }
    Py_XDECREF(sub_items);
    map_free(&subst);
    if (c->failed) {
        PyErr_NoMemory();
        return -1;
    }
    c->fstart[c->n] = (uint32_t)c->n_edges;
    return 0;
}

/* Lengauer-Tarjan's eval(v) with path compression, iterative (no recursion depth). */
static inline uint32_t eval_(uint32_t v, uint32_t *ancestor, uint32_t *label, const uint32_t *semi,
                             uint32_t *stack) {
    if (ancestor[v] == NONE) return v;
    uint32_t top = 0, x = v;
    while (ancestor[ancestor[x]] != NONE) {
        stack[top++] = x;
        x = ancestor[x];
    }
    while (top) { /* from the top of the path down: each step sees its compressed parent */
        x = stack[--top];
        uint32_t a = ancestor[x];
        if (semi[label[a]] < semi[label[x]]) label[x] = label[a];
        ancestor[x] = ancestor[a];
    }
    return label[v];
}

/* Step 3: the root's edges, depth-first order, predecessors, immediate dominators.
 * *order gets the depth-first preorder (node indices; the caller frees it). */
static int dominators(Census *c, uint32_t **order) {
    uint32_t n = c->n;
    size_t bytes = (size_t)n * sizeof(uint32_t);
    uint32_t *dfn = malloc(bytes), *vertex = malloc(bytes), *parent = malloc(bytes);
    uint32_t *stack = malloc(bytes), *cursor = malloc(bytes), *indeg = calloc(n, 4);
    uint32_t *semi = NULL, *ancestor = NULL, *label = NULL, *head = NULL, *next = NULL;
    uint32_t *idom_d = NULL;
    int ok = -1;
    if (!dfn || !vertex || !parent || !stack || !cursor || !indeg) goto done;
    /* The root's edges: named roots, then what nothing refers to (held from C). */
    for (size_t e = 0; e < c->n_edges; e++) indeg[c->fdst[e]]++;
    for (uint32_t k = 0; k < c->n_kids; k++) indeg[c->kids[k]]++;
    for (uint32_t v = 1; v < n; v++) {
        if (!indeg[v] && add_kid(c, v) < 0) goto done;
    }
    /* Depth-first preorder from the root; a node never reached becomes a root edge. */
    memset(dfn, 0xff, bytes);
    uint32_t next_dfn = 0, scan = 1, kid_pos = 0;
    dfn[0] = next_dfn++;
    vertex[0] = 0;
    parent[0] = 0;
    for (;;) {
        uint32_t start;
        if (kid_pos < c->n_kids) {
            start = c->kids[kid_pos++];
            if (dfn[start] != NONE) continue;
        } else {
            while (scan < n && dfn[scan] != NONE) scan++;
            if (scan >= n) break;
            start = scan;
            if (add_kid(c, start) < 0) goto done;
            kid_pos = c->n_kids;
        }
        dfn[start] = next_dfn;
        vertex[next_dfn] = start;
        parent[next_dfn] = 0;
        next_dfn++;
        uint32_t top = 0;
        stack[top] = start;
        cursor[top] = c->fstart[start];
        top++;
        while (top) {
            uint32_t v = stack[top - 1];
            if (cursor[top - 1] < c->fstart[v + 1]) {
                uint32_t w = c->fdst[cursor[top - 1]++];
                if (dfn[w] == NONE) {
                    dfn[w] = next_dfn;
                    vertex[next_dfn] = w;
                    parent[next_dfn] = dfn[v];
                    next_dfn++;
                    stack[top] = w;
                    cursor[top] = c->fstart[w];
                    top++;
                }
            } else {
                top--;
            }
        }
    }
    /* Predecessors (reverse CSR, by node index), the root's edges included. */
    c->pstart = calloc((size_t)n + 1, sizeof(uint32_t));
    c->psrc = malloc((c->n_edges + c->n_kids + 1) * sizeof(uint32_t));
    if (!c->pstart || !c->psrc) goto done;
    for (size_t e = 0; e < c->n_edges; e++) c->pstart[c->fdst[e] + 1]++;
    for (uint32_t k = 0; k < c->n_kids; k++) c->pstart[c->kids[k] + 1]++;
    for (uint32_t v = 0; v < n; v++) c->pstart[v + 1] += c->pstart[v];
    memcpy(cursor, c->pstart, bytes); /* fill positions */
    for (uint32_t v = 1; v < n; v++) {
        for (uint32_t e = c->fstart[v]; e < c->fstart[v + 1]; e++) {
            c->psrc[cursor[c->fdst[e]]++] = v;
        }
    }
    for (uint32_t k = 0; k < c->n_kids; k++) c->psrc[cursor[c->kids[k]]++] = 0;
    /* Lengauer-Tarjan, in depth-first numbers. */
    semi = malloc(bytes);
    ancestor = malloc(bytes);
    label = malloc(bytes);
    head = malloc(bytes);
    next = malloc(bytes);
    idom_d = malloc(bytes);
    if (!semi || !ancestor || !label || !head || !next || !idom_d) goto done;
    for (uint32_t d = 0; d < n; d++) {
        semi[d] = label[d] = d;
        ancestor[d] = head[d] = NONE;
        idom_d[d] = 0;
    }
    for (uint32_t w = n - 1; w >= 1; w--) {
        uint32_t wn = vertex[w];
        for (uint32_t e = c->pstart[wn]; e < c->pstart[wn + 1]; e++) {
            uint32_t v = dfn[c->psrc[e]];
            uint32_t u = eval_(v, ancestor, label, semi, stack);
            if (semi[u] < semi[w]) semi[w] = semi[u];
        }
        next[w] = head[semi[w]];
        head[semi[w]] = w;
        uint32_t p = parent[w];
        ancestor[w] = p;
        for (uint32_t v = head[p]; v != NONE; v = next[v]) {
            uint32_t u = eval_(v, ancestor, label, semi, stack);
            idom_d[v] = semi[u] < semi[v] ? u : p;
        }
        head[p] = NONE;
    }
    for (uint32_t w = 1; w < n; w++) {
        if (idom_d[w] != semi[w]) idom_d[w] = idom_d[idom_d[w]];
    }
    idom_d[0] = 0;
    c->idom = malloc(bytes);
    c->size = malloc((size_t)n * sizeof(int64_t));
    c->retained = malloc((size_t)n * sizeof(int64_t));
    if (!c->idom || !c->size || !c->retained) goto done;
    for (uint32_t d = 0; d < n; d++) c->idom[vertex[d]] = vertex[idom_d[d]];
    ok = 0;
done:
    free(dfn);
    free(parent);
    free(stack);
    free(cursor);
    free(indeg);
    free(semi);
    free(ancestor);
    free(label);
    free(head);
    free(next);
    free(idom_d);
    if (ok < 0) {
        free(vertex);
        PyErr_NoMemory();
        return -1;
    }
    *order = vertex; /* a dominator precedes what it dominates */
    return 0;
}

/* Step 4-5: sizes, retained sizes, rows by type. */
static int sizes(Census *c, uint32_t *order) {
    PyObject *sys = PyImport_ImportModule("sys");
    PyObject *getsizeof = sys ? PyObject_GetAttrString(sys, "getsizeof") : NULL;
    Py_XDECREF(sys);
    PyObject *name = PyUnicode_InternFromString("__sizeof__");
    PyObject *default_sizeof = name ? _PyType_Lookup(&PyBaseObject_Type, name) : NULL;
    AddrMap rows = {0};
    uint32_t cap = 256, n_rows = 0;
    TypeRow *row = malloc(cap * sizeof(TypeRow));
    int ok = -1;
    if (!getsizeof || !name || !row) goto done;
    c->size[0] = 0;
    c->total = 0;
    for (uint32_t i = 1; i < c->n; i++) {
        PyObject *obj = c->node[i];
        PyTypeObject *tp = Py_TYPE(obj);
        uint32_t r = map_get(&rows, (uintptr_t)tp);
        if (r == NONE) {
            if (n_rows == cap) {
                cap *= 2;
                TypeRow *grown = realloc(row, cap * sizeof(TypeRow));
                if (!grown) goto done;
                row = grown;
            }
            r = n_rows++;
            if (map_set(&rows, (uintptr_t)tp, r) < 0) goto done;
            row[r].type = tp;
            row[r].count = row[r].bytes = 0;
            row[r].presize = -1;
            row[r].how = CALL;
            row[r].sizeof_fn = NULL;
            PyObject *d = default_sizeof && tp->tp_is_gc == NULL ? _PyType_Lookup(tp, name) : NULL;
            if (d && d == default_sizeof) {
                row[r].how = DEFAULT_SIZEOF;
            } else if (d && Py_IS_TYPE(d, &PyMethodDescr_Type) &&
                       ((PyMethodDescrObject *)d)->d_method->ml_flags == METH_NOARGS &&
                       PyObject_TypeCheck(obj, PyDescr_TYPE(d))) {
                row[r].how = C_SIZEOF;
                row[r].sizeof_fn = ((PyMethodDescrObject *)d)->d_method->ml_meth;
            }
        }
        int64_t size = -1;
        int64_t own = -1; /* what __sizeof__ says, when it can be had without a call */
        if (row[r].how == DEFAULT_SIZEOF) {
            own = (int64_t)tp->tp_basicsize;
            if (tp->tp_itemsize > 0) own += (int64_t)Py_SIZE(obj) * (int64_t)tp->tp_itemsize;
        } else if (row[r].how == C_SIZEOF) {
            PyObject *got = row[r].sizeof_fn(obj, NULL);
            own = got ? (int64_t)PyLong_AsLongLong(got) : -1;
            Py_XDECREF(got);
            if (own < 0) {
                PyErr_Clear();
                row[r].how = CALL;
            }
        }
        if (own >= 0 && row[r].presize >= 0) {
            size = own + row[r].presize;
        } else {
            PyObject *got = PyObject_CallOneArg(getsizeof, obj);
            size = got ? (int64_t)PyLong_AsLongLong(got) : -1;
            Py_XDECREF(got);
            if (size < 0) {
                PyErr_Clear(); /* a broken __sizeof__: count the basic size */
                size = (int64_t)tp->tp_basicsize;
            } else if (own >= 0) {
                row[r].presize = size >= own ? size - own : 0;
                if (size < own) row[r].how = CALL;
            }
        }
        row[r].count++;
        row[r].bytes += size;
        c->size[i] = size;
        c->total += size;
    }
    memcpy(c->retained, c->size, (size_t)c->n * sizeof(int64_t));
    for (uint32_t k = c->n - 1; k >= 1; k--) {
        uint32_t v = order[k];
        c->retained[c->idom[v]] += c->retained[v];
    }
    ok = 0;
done:
    Py_XDECREF(getsizeof);
    Py_XDECREF(name);
    map_free(&rows);
    if (ok < 0) {
        free(row);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    c->types = row;
    c->n_types = n_rows;
    return 0;
}

static void census_dealloc(Census *self) {
    census_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Census(objects, ignore=(), roots=(), substitute=None) */
static int census_init(Census *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"objects", "ignore", "roots", "substitute", NULL};
    PyObject *objects, *ignore = NULL, *roots = NULL, *substitute = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO", kwlist, &objects, &ignore, &roots,
                                     &substitute)) {
        return -1;
    }
    census_clear(self);
    PyObject *empty = PyTuple_New(0);
    if (!empty) return -1;
    int gc_was = PyGC_Disable();
    int rc = build_graph(self, objects, ignore ? ignore : empty, roots ? roots : empty, substitute);
    Py_DECREF(empty);
    uint32_t *order = NULL;
    if (rc == 0) rc = dominators(self, &order);
    if (rc == 0) rc = sizes(self, order);
    free(order);
    if (gc_was) PyGC_Enable();
    if (rc < 0) census_clear(self);
    return rc;
}

static int check_index(Census *self, Py_ssize_t i) {
    if (!self->node || i < 0 || i >= (Py_ssize_t)self->n) {
        PyErr_SetString(PyExc_IndexError, "no such node (or the census is closed)");
        return -1;
    }
    return 0;
}

/* The node index in `arg`, checked; -1 with an exception set when it is not one. */
static Py_ssize_t node_arg(Census *self, PyObject *arg) {
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) return -1;
    return check_index(self, i) < 0 ? -1 : i;
}

static PyObject *index_list(const uint32_t *v, uint32_t lo, uint32_t hi) {
    PyObject *out = PyList_New(hi - lo);
    if (!out) return NULL;
    for (uint32_t e = lo; e < hi; e++) {
        PyObject *x = PyLong_FromUnsignedLong(v[e]);
        if (!x) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, e - lo, x);
    }
    return out;
}

static PyObject *c_index(Census *self, PyObject *obj) {
    uint32_t v = self->node ? map_get(&self->index, (uintptr_t)obj) : NONE;
    return PyLong_FromLong(v == NONE ? -1 : (long)v);
}

static PyObject *c_node(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    if (i < 0) return NULL;
    PyObject *obj = i ? self->node[i] : Py_None;
    Py_INCREF(obj);
    return obj;
}

static PyObject *c_idom(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    return i < 0 ? NULL : PyLong_FromUnsignedLong(self->idom[i]);
}

static PyObject *c_size(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    return i < 0 ? NULL : PyLong_FromLongLong(self->size[i]);
}

static PyObject *c_retained(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    return i < 0 ? NULL : PyLong_FromLongLong(self->retained[i]);
}

static PyObject *c_successors(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    if (i < 0) return NULL;
    if (i == 0) return index_list(self->kids, 0, self->n_kids);
    return index_list(self->fdst, self->fstart[i], self->fstart[i + 1]);
}

static PyObject *c_predecessors(Census *self, PyObject *arg) {
    Py_ssize_t i = node_arg(self, arg);
    if (i < 0) return NULL;
    return index_list(self->psrc, self->pstart[i], self->pstart[i + 1]);
}

/* Put v at the top of the min-heap heap[0..used) (by r[]) and sift it down. */
static void sift_down(uint32_t *heap, Py_ssize_t used, uint32_t v, const int64_t *r) {
    Py_ssize_t pos = 0;
    for (;;) {
        Py_ssize_t child = 2 * pos + 1;
        if (child >= used) break;
        if (child + 1 < used && r[heap[child + 1]] < r[heap[child]]) child++;
        if (r[heap[child]] >= r[v]) break;
        heap[pos] = heap[child];
        pos = child;
    }
    heap[pos] = v;
}

/* largest(k): the k nodes with the largest retained size, largest first (a min-heap). */
static PyObject *c_largest(Census *self, PyObject *arg) {
    Py_ssize_t k = PyLong_AsSsize_t(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (!self->node || k <= 0) return PyList_New(0);
    if (k > (Py_ssize_t)self->n - 1) k = (Py_ssize_t)self->n - 1;
    uint32_t *heap = malloc((size_t)(k ? k : 1) * sizeof(uint32_t));
    if (!heap) return PyErr_NoMemory();
    const int64_t *r = self->retained;
    Py_ssize_t used = 0;
    for (uint32_t v = 1; v < self->n; v++) {
        Py_ssize_t pos;
        if (used < k) {
            pos = used++;
            while (pos > 0 && r[heap[(pos - 1) / 2]] > r[v]) {
                heap[pos] = heap[(pos - 1) / 2];
                pos = (pos - 1) / 2;
            }
            heap[pos] = v;
        } else if (r[v] > r[heap[0]]) {
            sift_down(heap, used, v, r); /* replaces the smallest */
        }
    }
    PyObject *out = PyList_New(used);
    if (!out) {
        free(heap);
        return NULL;
    }
    for (Py_ssize_t j = used - 1; j >= 0; j--) { /* pop the smallest into the back */
        uint32_t top = heap[0];
        sift_down(heap, j, heap[j], r);
        PyObject *x = PyLong_FromUnsignedLong(top);
        if (!x) {
            free(heap);
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, x);
    }
    free(heap);
    return out;
}

/* types(): [(type, count, bytes)], in no particular order. */
static PyObject *c_types(Census *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(self->n_types);
    if (!out) return NULL;
    for (uint32_t r = 0; r < self->n_types; r++) {
        TypeRow *row = &self->types[r];
        PyObject *t = Py_BuildValue("(OLL)", (PyObject *)row->type, (long long)row->count,
                                    (long long)row->bytes);
        if (!t) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, r, t);
    }
    return out;
}

static PyObject *c_close(Census *self, PyObject *Py_UNUSED(ignored)) {
    census_clear(self);
    Py_RETURN_NONE;
}

static PyObject *c_edges(Census *self, void *Py_UNUSED(closure)) {
    return PyLong_FromSize_t(self->n_edges);
}

static PyObject *c_total(Census *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(self->total);
}

static Py_ssize_t c_len(Census *self) { return self->n ? (Py_ssize_t)self->n - 1 : 0; }

static PyMethodDef census_methods[] = {
    {"index", (PyCFunction)c_index, METH_O, "the node index of an object, or -1"},
    {"node", (PyCFunction)c_node, METH_O, "the object at a node index (None for 0, the root)"},
    {"idom", (PyCFunction)c_idom, METH_O, "the immediate dominator's node index"},
    {"size", (PyCFunction)c_size, METH_O, "the node's own size (sys.getsizeof)"},
    {"retained", (PyCFunction)c_retained, METH_O, "what would be freed with the node"},
    {"successors", (PyCFunction)c_successors, METH_O, "node indices the node refers to"},
    {"predecessors", (PyCFunction)c_predecessors, METH_O, "node indices referring to it"},
    {"largest", (PyCFunction)c_largest, METH_O, "the k largest nodes by retained size"},
    {"types", (PyCFunction)c_types, METH_NOARGS, "[(type, count, bytes)]"},
    {"close", (PyCFunction)c_close, METH_NOARGS, "release every node"},
    {NULL}};

static PyGetSetDef census_getset[] = {
    {"edges", (getter)c_edges, NULL, "number of references walked", NULL},
    {"total", (getter)c_total, NULL, "bytes of every node", NULL},
    {NULL}};

static PySequenceMethods census_as_sequence = {.sq_length = (lenfunc)c_len};

static PyTypeObject CensusType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memlens._census.Census",
    .tp_basicsize = sizeof(Census),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The heap's reference graph, dominator tree and retained sizes.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)census_init,
    .tp_dealloc = (destructor)census_dealloc,
    .tp_methods = census_methods,
    .tp_getset = census_getset,
    .tp_as_sequence = &census_as_sequence,
};

/* -- grown containers: the checkpoint's listing filter ----------------------------
 *
 * grown_containers(objects, types, ids, lens, min_len) -> [(obj, len)]
 *
 * A checkpoint follows only the containers the first checkpoint saw (``ids``: their
 * addresses, sorted, as an unsigned 64-bit buffer; ``lens``: their lengths then, in
 * the same order, signed 64-bit). Of ``objects`` (gc.get_objects()), it wants those
 * whose exact type is in ``types``, that are at least ``min_len`` long, whose address
 * is one of ``ids`` and that are longer now than then. A Python loop over every
 * long container cost ~150 ms at a million objects; this allocates nothing but the
 * answer (an address may have been reused by a new object: the caller checks the
 * type name). */
/* The first index of the sorted ids[0..m) not below key (m if none). */
static inline Py_ssize_t lower_bound(const uint64_t *ids, Py_ssize_t m, uint64_t key) {
    Py_ssize_t lo = 0, hi = m;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int exact_type_in(PyTypeObject *t, PyObject *types) {
    Py_ssize_t n = PyTuple_GET_SIZE(types);
    for (Py_ssize_t i = 0; i < n; i++)
        if ((PyObject *)t == PyTuple_GET_ITEM(types, i)) return 1;
    return 0;
}

static PyObject *grown_containers(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *objects, *types;
    Py_buffer ids, lens;
    Py_ssize_t min_len;
    if (!PyArg_ParseTuple(args, "O!O!y*y*n", &PyList_Type, &objects, &PyTuple_Type, &types,
                          &ids, &lens, &min_len))
        return NULL;
    PyObject *out = NULL;
    if (ids.itemsize != 8 || lens.itemsize != 8 || ids.len != lens.len) {
        PyErr_SetString(PyExc_ValueError, "ids and lens must be 64-bit buffers of one length");
        goto done;
    }
    const uint64_t *id = (const uint64_t *)ids.buf;
    const int64_t *len0 = (const int64_t *)lens.buf;
    Py_ssize_t m = ids.len / 8;
    out = PyList_New(0);
    if (!out) goto done;
    /* Indexing by position each time: a len() may, in theory, run code that changes
     * the list (the container types here are all built in, so it does not). */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objects); i++) {
        PyObject *o = PyList_GET_ITEM(objects, i);
        if (!exact_type_in(Py_TYPE(o), types)) continue;
        Py_ssize_t n = PyObject_Size(o);
        if (n < 0) {
            PyErr_Clear();
            continue;
        }
        if (n < min_len) continue;
        uint64_t key = (uint64_t)(uintptr_t)o;
        Py_ssize_t lo = lower_bound(id, m, key);
        if (lo >= m || id[lo] != key || (int64_t)n <= len0[lo]) continue;
        PyObject *pair = Py_BuildValue("(On)", o, n);
        if (!pair || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(pair);
    }
done:
    PyBuffer_Release(&ids);
    PyBuffer_Release(&lens);
    return out;
}

/* pick_by_address(objects, addresses) -> [obj]: the objects whose address is in the
 * sorted unsigned 64-bit buffer ``addresses``, in the order of ``objects``. Finding a
 * few containers by id among a million objects allocated an int per object in
 * Python (~1.4 us each under tracemalloc); this allocates only the answer. */
static PyObject *pick_by_address(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *objects;
    Py_buffer ids;
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &objects, &ids)) return NULL;
    PyObject *out = NULL;
    if (ids.itemsize != 8) {
        PyErr_SetString(PyExc_ValueError, "addresses must be a 64-bit buffer");
        goto done;
    }
    const uint64_t *id = (const uint64_t *)ids.buf;
    Py_ssize_t m = ids.len / 8;
    out = PyList_New(0);
    if (!out) goto done;
    for (Py_ssize_t i = 0; m && i < PyList_GET_SIZE(objects); i++) {
        PyObject *o = PyList_GET_ITEM(objects, i);
        uint64_t key = (uint64_t)(uintptr_t)o;
        Py_ssize_t lo = lower_bound(id, m, key);
        if (lo < m && id[lo] == key && PyList_Append(out, o) < 0) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    PyBuffer_Release(&ids);
    return out;
}

static PyMethodDef module_methods[] = {
    {"pick_by_address", pick_by_address, METH_VARARGS,
     "pick_by_address(objects, addresses) -> [obj]: the objects whose address is in the "
     "sorted 64-bit buffer addresses"},
    {"grown_containers", grown_containers, METH_VARARGS,
     "grown_containers(objects, types, ids, lens, min_len) -> [(obj, len)]: the objects "
     "of an exact type in types, at least min_len long, whose address is in the sorted "
     "ids and that are longer than the matching lens"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_census", "The heap census's graph walk and dominators in C.", -1,
    module_methods};

PyMODINIT_FUNC PyInit__census(void) {
    if (PyType_Ready(&CensusType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&CensusType);
    if (PyModule_AddObject(m, "Census", (PyObject *)&CensusType) < 0) {
        Py_DECREF(&CensusType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
