/* research._step: an optimizer plan's step (research/kernels/_plans.py) at the cost of one call.
 *
 * On small arrays a step's cost was Python's: the chain of comparisons testing the scalars,
 * then cffi converting each argument of each batched call. `make` packs what a plan binds
 * (its packed kernels, kernels.h, with their instruction set, counts and arrays of structs;
 * the scalars' ranges) into a capsule, once. `call(plan, *scalars)` tests each scalar against
 * its range and makes the calls in order; when a scalar is not a plain int or float in its
 * range it calls nothing and returns False, and the plan's Python step checks that scalar
 * exactly: it raises the error a checked function raises, or makes the calls itself (a numpy
 * scalar, an integer beyond 2**53). The kernels are the kernel library's, reached through
 * their addresses, so the results are its own. Built for the stable ABI (Python 3.10), like
 * the kernel library; no global state.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030A0000
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

typedef void packed_updates(int isa, size_t count, const void *arrays, const double *scalars);

#define CAPSULE "research._step.plan"
#define MAX_SCALARS 8
/* A step over at least this many values releases the GIL during its calls, as cffi's calls
 * do; on fewer, the release would cost more than the update. */
#define RELEASE_GIL_FROM 16384

struct range {
    int integer, low_closed, high_closed;
    double low, high;            /* a float's ends */
    long long int_low, int_high; /* an integer's, both included */
};

struct run {
    packed_updates *updates;
    int isa;
    size_t count;
    const void *arrays;
};

struct plan {
    PyObject *owner; /* what keeps the arrays and structs alive, held by the capsule */
    size_t values;
    Py_ssize_t n_scalars, n_runs;
    struct range ranges[MAX_SCALARS];
    struct run runs[];
};

static void plan_free(PyObject *capsule)
{
    struct plan *plan = PyCapsule_GetPointer(capsule, CAPSULE);
    if (plan != NULL) {
        Py_XDECREF(plan->owner);
        PyMem_Free(plan);
    }
}

/* Whether `item` is a tuple of `size` items; a TypeError naming `what` if not. */
static int is_tuple_of(PyObject *item, Py_ssize_t size, const char *what)
{
    if (PyTuple_Check(item) && PyTuple_Size(item) == size)
        return 1;
    PyErr_Format(PyExc_TypeError, "make: each %s must be a tuple of %zd items", what, size);
    return 0;
}

static int read_range(PyObject *item, struct range *range)
{
    if (!is_tuple_of(item, 5, "range"))
        return -1;
    range->integer = PyObject_IsTrue(PyTuple_GetItem(item, 0));
    range->low_closed = PyObject_IsTrue(PyTuple_GetItem(item, 2));
    range->high_closed = PyObject_IsTrue(PyTuple_GetItem(item, 4));
    if (range->integer) {
        range->int_low = PyLong_AsLongLong(PyTuple_GetItem(item, 1));
        range->int_high = PyLong_AsLongLong(PyTuple_GetItem(item, 3));
    } else {
        range->low = PyFloat_AsDouble(PyTuple_GetItem(item, 1));
        range->high = PyFloat_AsDouble(PyTuple_GetItem(item, 3));
    }
    return PyErr_Occurred() ? -1 : 0;
}

static int read_run(PyObject *item, struct run *run)
{
    if (!is_tuple_of(item, 4, "run"))
        return -1;
    /* an address as an integer: ISO C converts integers, not object pointers, to functions */
    run->updates = (packed_updates *)(uintptr_t)PyLong_AsUnsignedLongLong(PyTuple_GetItem(item, 0));
    run->isa = (int)PyLong_AsLong(PyTuple_GetItem(item, 1));
    run->count = PyLong_AsSize_t(PyTuple_GetItem(item, 2));
    run->arrays = PyLong_AsVoidPtr(PyTuple_GetItem(item, 3));
    if (PyErr_Occurred())
        return -1;
    if (run->updates == NULL || run->arrays == NULL) {
        PyErr_SetString(PyExc_ValueError, "make: a run needs a kernel and its arrays");
        return -1;
    }
    return 0;
}

/* make(runs, ranges, values, owner): runs, a tuple of (kernel address, isa, count, structs
 * address); ranges, a tuple of (integer, low, low closed, high, high closed) per scalar (an
 * integer's ends are ints and both included); values, how many the step updates; owner, the
 * object whose life keeps the arrays and structs alive. */
static PyObject *make(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyTuple_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "make(runs: tuple, ranges: tuple, values: int, owner)");
        return NULL;
    }
    Py_ssize_t n_runs = PyTuple_Size(args[0]), n_scalars = PyTuple_Size(args[1]);
    if (n_runs < 1 || n_scalars > MAX_SCALARS) {
        PyErr_Format(PyExc_ValueError, "make: a plan needs 1 or more runs and at most %d scalars",
                     MAX_SCALARS);
        return NULL;
    }
    size_t values = PyLong_AsSize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    struct plan *plan = PyMem_Calloc(1, sizeof *plan + (size_t)n_runs * sizeof(struct run));
    if (plan == NULL)
        return PyErr_NoMemory();
    plan->values = values;
    plan->n_runs = n_runs;
    plan->n_scalars = n_scalars;
    for (Py_ssize_t i = 0; i < n_runs; ++i)
        if (read_run(PyTuple_GetItem(args[0], i), &plan->runs[i]) < 0)
            goto fail;
    for (Py_ssize_t i = 0; i < n_scalars; ++i)
        if (read_range(PyTuple_GetItem(args[1], i), &plan->ranges[i]) < 0)
            goto fail;
    PyObject *capsule = PyCapsule_New(plan, CAPSULE, plan_free);
    if (capsule == NULL)
        goto fail;
    Py_INCREF(args[3]);
    plan->owner = args[3];
    return capsule;
fail:
    PyMem_Free(plan);
    return NULL;
}

/* Scalar x as a double when it is a plain int or float in `range`; 0 otherwise. */
static int in_range(PyObject *x, const struct range *range, double *value)
{
    if (range->integer) {
        if (Py_TYPE(x) != &PyLong_Type)
            return 0;
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (overflow || n < range->int_low || n > range->int_high)
            return 0;
        *value = (double)n;
        return 1;
    }
    if (Py_TYPE(x) != &PyFloat_Type)
        return 0;
    double v = PyFloat_AsDouble(x);
    /* every comparison with NaN is false: NaN is in no range */
    int above = range->low_closed ? v >= range->low : v > range->low;
    int below = range->high_closed ? v <= range->high : v < range->high;
    *value = v;
    return above && below;
}

/* call(plan, *scalars): True once every run's kernel has updated its arrays; False, with
 * nothing called, when a scalar is not a plain int or float in its range. */
static PyObject *call(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call(plan, *scalars)");
        return NULL;
    }
    const struct plan *plan = PyCapsule_GetPointer(args[0], CAPSULE);
    if (plan == NULL)
        return NULL;
    if (nargs - 1 != plan->n_scalars)
        Py_RETURN_FALSE;
    double scalars[MAX_SCALARS];
    for (Py_ssize_t i = 0; i < plan->n_scalars; ++i)
        if (!in_range(args[i + 1], &plan->ranges[i], &scalars[i]))
            Py_RETURN_FALSE;
    if (plan->values >= RELEASE_GIL_FROM) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < plan->n_runs; ++i)
            plan->runs[i].updates(plan->runs[i].isa, plan->runs[i].count, plan->runs[i].arrays,
                                  scalars);
        Py_END_ALLOW_THREADS
    } else {
        for (Py_ssize_t i = 0; i < plan->n_runs; ++i)
            plan->runs[i].updates(plan->runs[i].isa, plan->runs[i].count, plan->runs[i].arrays,
                                  scalars);
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"make", (PyCFunction)(void (*)(void))make, METH_FASTCALL,
     "make(runs, ranges, values, owner): a plan's calls and scalar ranges, packed once."},
    {"call", (PyCFunction)(void (*)(void))call, METH_FASTCALL,
     "call(plan, *scalars): test the scalars and make the plan's calls; False if a scalar "
     "needs the exact checks (nothing was called)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "research._step",
    "An optimizer plan's step in one call: test the scalars, call the packed kernels.", 0,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__step(void)
{
    return PyModule_Create(&module);
}
