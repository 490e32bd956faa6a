/* The reverse reference graph of the heap, in compact arrays (memlens._heapgraph).
 *
 * One pass calls every node's tp_traverse (what gc.get_referents does) and records
 * each edge "referrer -> referent" as a pair of 32-bit node indices; a counting
 * sort by referent then gives CSR arrays (offsets per node, referrers per edge).
 * Time and memory are linear: ~48 bytes per node (pointer, hash slot, offset) and
 * 4 bytes per edge once built (8 while building). No Python object is created per
 * edge or per node.
 *
 * Untracked containers (a dict of str -> str, a tuple of ints) are not in
 * gc.get_objects() yet they retain things: they become nodes when first met as a
 * referent, and are traversed in turn.
 *
 * Everything runs with the GIL held and without calling Python code: the visit
 * callback only reads pointers and writes C arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uintptr_t key; /* object address; 0 = empty slot */
    uint32_t val;  /* node index */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask; /* size - 1; size is a power of two, at most half full */
    size_t used;
} Table;

typedef struct {
    PyObject_HEAD
    PyObject **nodes; /* strong references */
    Py_ssize_t n, cap;
    Table table;   /* every node */
    Table atoms;   /* nodes the GC cannot traverse into (a str target): small, cache-hot */
    uint32_t *off; /* built_n + 1 offsets into src */
    uint32_t *src; /* referrer index per edge, grouped by referent */
    Py_ssize_t n_edges;
    Py_ssize_t built_n; /* nodes covered by off (nodes added later have no edges) */
} Graph;

typedef struct {
    Graph *g;
    uint32_t current;
    uint32_t *pairs; /* (src, dst) */
    size_t n_pairs, cap_pairs;
    int failed;
} Build;

static inline size_t hash_ptr(uintptr_t p) {
    p >>= 4;
    p ^= p >> 33;
    p *= 0xff51afd7ed558ccdULL;
    p ^= p >> 33;
    return (size_t)p;
}

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

static inline int traversable(PyObject *o) {
    return PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse != NULL;
}

/* Add obj as a node (new reference taken) unless present; returns its index. */
static Py_ssize_t add_node(Graph *g, PyObject *obj) {
    Py_ssize_t found = table_find(&g->table, (uintptr_t)obj);
    if (found >= 0) return found;
    if (g->n >= (Py_ssize_t)UINT32_MAX - 1) return -1;
    if (g->n == g->cap) {
        Py_ssize_t cap = g->cap ? g->cap * 2 : 1024;
        PyObject **nodes = PyMem_RawRealloc(g->nodes, cap * sizeof(PyObject *));
        if (!nodes) return -1;
        g->nodes = nodes;
        g->cap = cap;
    }
    if (table_put(&g->table, (uintptr_t)obj, (uint32_t)g->n) < 0) return -1;
    if (!PyObject_IS_GC(obj) && table_put(&g->atoms, (uintptr_t)obj, (uint32_t)g->n) < 0) {
        return -1;
    }
    Py_INCREF(obj);
    g->nodes[g->n] = obj;
    return g->n++;
}

static inline int is_untracked_container(PyObject *o) {
    return PyDict_CheckExact(o) || PyTuple_CheckExact(o) || PyList_CheckExact(o) ||
           PySet_CheckExact(o) || PyFrozenSet_CheckExact(o);
}

static int visit(PyObject *child, void *arg) {
    Build *b = (Build *)arg;
    Graph *g = b->g;
    Py_ssize_t dst;
    if (!PyObject_IS_GC(child)) {
        /* str, int, bytes...: a node only when a target; a probe of the small table. */
        dst = table_find(&g->atoms, (uintptr_t)child);
        if (dst < 0) return 0;
    } else {
        dst = table_find(&g->table, (uintptr_t)child);
    }
    if (dst < 0) {
        if (!is_untracked_container(child)) return 0;
        dst = add_node(g, child);
        if (dst < 0) {
            b->failed = 1;
            return -1;
        }
    }
    if (b->n_pairs == b->cap_pairs) {
        size_t cap = b->cap_pairs ? b->cap_pairs * 2 : 1 << 16;
        uint32_t *pairs = PyMem_RawRealloc(b->pairs, cap * 2 * sizeof(uint32_t));
        if (!pairs) {
            b->failed = 1;
            return -1;
        }
        b->pairs = pairs;
        b->cap_pairs = cap;
    }
    b->pairs[2 * b->n_pairs] = b->current;
    b->pairs[2 * b->n_pairs + 1] = (uint32_t)dst;
    b->n_pairs++;
    return 0;
}

static void graph_clear(Graph *g) {
    PyObject **nodes = g->nodes;
    Py_ssize_t n = g->n;
    g->nodes = NULL;
    g->n = g->cap = 0;
    table_free(&g->table);
    table_free(&g->atoms);
    PyMem_RawFree(g->off);
    PyMem_RawFree(g->src);
    g->off = g->src = NULL;
    g->n_edges = 0;
    g->built_n = 0;
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(nodes[i]);
    PyMem_RawFree(nodes);
}

/* Graph(objects, skip=()) -- skip: ids of objects whose own references are not walked. */
static int graph_init(Graph *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"objects", "skip", NULL};
    PyObject *objects, *skip = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O", kwlist, &objects, &skip)) return -1;
    graph_clear(self);
    PyObject *seq = PySequence_Fast(objects, "objects must be a sequence");
    if (!seq) return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    /* Untracked containers met while walking add ~10 %; reserve once, no rehash. */
    if (table_reserve(&self->table, (size_t)count + (size_t)count / 8 + 16) < 0) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (add_node(self, items[i]) < 0) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_DECREF(seq);
    /* Skipped objects (given by id): their index is marked so they are not traversed. */
    char *skipped = NULL;
    Py_ssize_t n_skip_marks = 0;
    if (skip && skip != Py_None) {
        PyObject *it = PyObject_GetIter(skip);
        if (!it) return -1;
        n_skip_marks = self->n;
        skipped = PyMem_RawCalloc(n_skip_marks ? n_skip_marks : 1, 1);
        if (!skipped) {
            Py_DECREF(it);
            PyErr_NoMemory();
            return -1;
        }
        PyObject *oid;
        while ((oid = PyIter_Next(it)) != NULL) {
            void *p = PyLong_AsVoidPtr(oid);
            Py_DECREF(oid);
            if (p == NULL && PyErr_Occurred()) {
                Py_DECREF(it);
                PyMem_RawFree(skipped);
                return -1;
            }
            Py_ssize_t idx = table_find(&self->table, (uintptr_t)p);
            if (idx >= 0 && idx < n_skip_marks) skipped[idx] = 1;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            PyMem_RawFree(skipped);
            return -1;
        }
    }
    Build b = {self, 0, NULL, 0, 0, 0};
    for (Py_ssize_t i = 0; i < self->n; i++) { /* n grows as containers are met */
        if (i < n_skip_marks && skipped[i]) continue;
        PyObject *obj = self->nodes[i];
        if (!traversable(obj)) continue;
        b.current = (uint32_t)i;
        if (Py_TYPE(obj)->tp_traverse(obj, visit, &b) < 0 && b.failed) break;
    }
    PyMem_RawFree(skipped);
    if (b.failed) {
        PyMem_RawFree(b.pairs);
        graph_clear(self);
        PyErr_NoMemory();
        return -1;
    }
    /* Counting sort of the pairs by referent. */
    Py_ssize_t n = self->n;
    self->off = PyMem_RawCalloc((size_t)n + 1, sizeof(uint32_t));
    self->src = PyMem_RawMalloc((b.n_pairs ? b.n_pairs : 1) * sizeof(uint32_t));
    if (!self->off || !self->src || b.n_pairs >= UINT32_MAX) {
        PyMem_RawFree(b.pairs);
        graph_clear(self);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t e = 0; e < b.n_pairs; e++) self->off[b.pairs[2 * e + 1] + 1]++;
    for (Py_ssize_t i = 0; i < n; i++) self->off[i + 1] += self->off[i];
    uint32_t *fill = PyMem_RawMalloc(((size_t)n + 1) * sizeof(uint32_t));
    if (!fill) {
        PyMem_RawFree(b.pairs);
        graph_clear(self);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(fill, self->off, ((size_t)n + 1) * sizeof(uint32_t));
    for (size_t e = 0; e < b.n_pairs; e++) self->src[fill[b.pairs[2 * e + 1]]++] = b.pairs[2 * e];
    PyMem_RawFree(fill);
    PyMem_RawFree(b.pairs);
    self->n_edges = (Py_ssize_t)b.n_pairs;
    self->built_n = n;
    return 0;
}

static void graph_dealloc(Graph *self) {
    graph_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t index_of_id(Graph *self, PyObject *oid) {
    void *p = PyLong_AsVoidPtr(oid);
    if (p == NULL && PyErr_Occurred()) return -2;
    return table_find(&self->table, (uintptr_t)p);
}

static PyObject *graph_referrers(Graph *self, PyObject *oid) {
    Py_ssize_t idx = index_of_id(self, oid);
    if (idx == -2) return NULL;
    if (idx < 0 || idx >= self->built_n) return PyList_New(0);
    uint32_t lo = self->off[idx], hi = self->off[idx + 1];
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
    Py_ssize_t idx = index_of_id(self, oid);
    if (idx == -2) return NULL;
    if (idx < 0) Py_RETURN_NONE;
    PyObject *obj = self->nodes[idx];
    Py_INCREF(obj);
    return obj;
}

static PyObject *graph_add(Graph *self, PyObject *obj) {
    if (add_node(self, obj) < 0) return PyErr_NoMemory();
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
    Py_ssize_t idx = index_of_id(self, oid);
    if (idx == -2) return -1;
    return idx >= 0;
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
    Table skipped = {NULL, 0, 0};
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
    if (skip && skip != Py_None) {
        PyObject *it = PyObject_GetIter(skip);
        if (!it) goto fail;
        PyObject *oid;
        while ((oid = PyIter_Next(it)) != NULL) {
            void *p = PyLong_AsVoidPtr(oid);
            Py_DECREF(oid);
            if ((p == NULL && PyErr_Occurred()) || (p && table_put(&skipped, (uintptr_t)p, 0) < 0)) {
                Py_DECREF(it);
                if (!PyErr_Occurred()) PyErr_NoMemory();
                goto fail;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) goto fail;
    }
    /* objects may not change size while C code walks it: nothing here runs Python code. */
    Py_ssize_t n = PyList_GET_SIZE(objects);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = PyList_GET_ITEM(objects, i);
        if (skipped.used && table_find(&skipped, (uintptr_t)obj) >= 0) continue;
        if (scan_one(&s, obj) < 0) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            goto fail;
        }
    }
    table_free(&s.targets);
    table_free(&s.seen);
    table_free(&skipped);
    PyMem_RawFree(s.stack);
    return s.out;
nomem:
    PyErr_NoMemory();
fail:
    table_free(&s.targets);
    table_free(&s.seen);
    table_free(&skipped);
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
