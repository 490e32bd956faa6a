/* memlens._tracegroup: a tracemalloc snapshot's traces summed per traceback, in C.
 *
 * Within one snapshot tracemalloc hands out one shared tuple per distinct traceback
 * (its traceback table is interned), so the traces can be grouped by the identity of
 * that tuple in one pass over the list, with no Python object made per trace. A
 * Python loop or a sort over a million traces costs about a second; this costs a
 * few milliseconds. Everything else (filtering memlens's own frames, sites,
 * components) then runs once per distinct traceback, in Python.
 *
 * The table is allocated with the C library's malloc, not Python's allocators, so
 * tracing the heap while it is grouped does not trace the grouping itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    PyObject *key; /* borrowed: the traces list keeps it alive during the call */
    Py_ssize_t size;
    Py_ssize_t count;
    Py_ssize_t order; /* first appearance, so the result is in trace order */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    size_t used;
} Table;

static size_t hash_ptr(const void *p) {
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 33;
    x *= (uintptr_t)0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static int table_init(Table *t, size_t capacity) {
    t->slots = calloc(capacity, sizeof(Slot));
    if (t->slots == NULL) {
        return -1;
    }
    t->mask = capacity - 1;
    t->used = 0;
    return 0;
}

static Slot *table_find(Table *t, PyObject *key) {
    size_t i = hash_ptr(key) & t->mask;
    while (t->slots[i].key != NULL && t->slots[i].key != key) {
        i = (i + 1) & t->mask;
    }
    return &t->slots[i];
}

static int table_grow(Table *t) {
    Table bigger;
    if (table_init(&bigger, (t->mask + 1) * 2) < 0) {
        return -1;
    }
    for (size_t i = 0; i <= t->mask; i++) {
        if (t->slots[i].key != NULL) {
            *table_find(&bigger, t->slots[i].key) = t->slots[i];
        }
    }
    bigger.used = t->used;
    free(t->slots);
    *t = bigger;
    return 0;
}

static int by_order(const void *a, const void *b) {
    Py_ssize_t x = (*(const Slot *const *)a)->order, y = (*(const Slot *const *)b)->order;
    return (x > y) - (x < y);
}

PyDoc_STRVAR(group_doc,
             "group(traces, key=2, size=1) -> [(traceback, bytes, blocks)]\n\n"
             "Sum the traces (tuples) per identical traceback object, in first-seen order.");

static PyObject *tracegroup_group(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"traces", "key", "size", NULL};
    PyObject *traces;
    Py_ssize_t key_at = 2, size_at = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|nn", kwlist, &PyList_Type, &traces, &key_at,
                                     &size_at)) {
        return NULL;
    }
    if (key_at < 0 || size_at < 0) {
        PyErr_SetString(PyExc_ValueError, "key and size are tuple positions (>= 0)");
        return NULL;
    }
    Py_ssize_t need = (key_at > size_at ? key_at : size_at) + 1;
    Table table;
    if (table_init(&table, 1024) < 0) {
        return PyErr_NoMemory();
    }
    Py_ssize_t n = PyList_GET_SIZE(traces);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *trace = PyList_GET_ITEM(traces, i);
        if (!PyTuple_Check(trace) || PyTuple_GET_SIZE(trace) < need) {
            free(table.slots);
            PyErr_Format(PyExc_TypeError, "trace %zd is not a tuple of at least %zd items", i,
                         need);
            return NULL;
        }
        Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(trace, size_at));
        if (size == -1 && PyErr_Occurred()) {
            free(table.slots);
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(trace, key_at);
        Slot *slot = table_find(&table, key);
        if (slot->key == NULL) {
            slot->key = key;
            slot->order = (Py_ssize_t)table.used++;
            if (table.used * 2 > table.mask + 1) {
                slot->size = size;
                slot->count = 1;
                if (table_grow(&table) < 0) {
                    free(table.slots);
                    return PyErr_NoMemory();
                }
                continue;
            }
        }
        slot->size += size;
        slot->count += 1;
    }
    Slot **ordered = malloc((table.used ? table.used : 1) * sizeof(Slot *));
    if (ordered == NULL) {
        free(table.slots);
        return PyErr_NoMemory();
    }
    size_t k = 0;
    for (size_t i = 0; i <= table.mask; i++) {
        if (table.slots[i].key != NULL) {
            ordered[k++] = &table.slots[i];
        }
    }
    qsort(ordered, k, sizeof(Slot *), by_order);
    PyObject *out = PyList_New((Py_ssize_t)k);
    if (out != NULL) {
        for (size_t i = 0; i < k; i++) {
            PyObject *row = Py_BuildValue("(Onn)", ordered[i]->key, ordered[i]->size,
                                          ordered[i]->count);
            if (row == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, (Py_ssize_t)i, row);
        }
    }
    free(ordered);
    free(table.slots);
    return out;
}

static PyMethodDef methods[] = {
    {"group", (PyCFunction)(void (*)(void))tracegroup_group, METH_VARARGS | METH_KEYWORDS,
     group_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memlens._tracegroup",
    "A tracemalloc snapshot's traces summed per traceback, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__tracegroup(void) { return PyModule_Create(&module); }
