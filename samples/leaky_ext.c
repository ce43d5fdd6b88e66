/* leaky_ext: a CPython C extension with the two classic native leaks, attributed to its own
 * C functions (python attribution: the interpreter's frames are not sites).
 *
 *   leaky_ext.checksum(data)   copies data into a PyMem_Malloc scratch buffer, sums it, and
 *                              returns without PyMem_Free: leaky_checksum loses len(data) B
 *                              per call
 *   leaky_ext.remember(list, n) appends a new bytes object of n zero bytes to list and
 *                              forgets the Py_DECREF of its own reference: once the list is
 *                              gone, the object stays alive (refcount 1). A bytes object of
 *                              n bytes is one block of 33 + n B on 64-bit CPython 3.11
 *                              (header 32 B, the data, a NUL; sys.getsizeof says the same)
 *
 * Sizes above 512 B go to malloc even with pymalloc (it serves only small requests), so the
 * figures are the same with and without PYTHONMALLOC=malloc.
 *
 * This one file builds two things (see the Makefile's samples section):
 *   - compiled with -DLKD_EXTENSION -fPIC -shared against python3-dev: the extension module
 *     build/samples/leaky_ext.so, which samples/py_leaky_ext.py imports (the usual case:
 *     `leakdiff run --python -- python3 samples/py_leaky_ext.py`);
 *   - otherwise the program build/samples/leaky_ext, which embeds CPython (libpython3.11.so)
 *     with this module built in. Its main process forks and waits: it leaks nothing itself.
 *     The fork child runs the interpreter with the malloc allocator (PYMEM_ALLOCATOR_MALLOC,
 *     what PYTHONMALLOC=malloc selects), calls checksum on 4,096 B ten times (40,960 B in 10
 *     blocks lost in leaky_checksum) and remember(list, 1000) five times before dropping the
 *     list (5 x 1,033 = 5,165 B in 5 blocks, in leaky_remember), then finalizes the
 *     interpreter and exits. The child's snapshot holds what the interpreter itself keeps
 *     after Py_FinalizeEx as well; valgrind agrees with its totals. The snapshot is of a
 *     CPython process (libpython3.11.so is in its module map), so the analyzer skips the
 *     interpreter's frames by itself.
 *
 * EXPECT snapshots=2
 * EXPECT total bytes=0 blocks=0
 * EXPECT @child site function=leaky_checksum bytes=40960 blocks=10
 * EXPECT @child site function=leaky_remember bytes=5165 blocks=5
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* noipa: each C function stays a real frame with its own name. */
#define SITE __attribute__((noipa))

/* checksum(data: bytes) -> int: the sum of data's bytes, computed in a scratch copy that is
 * never freed (the bug: PyMem_Free is missing on the way out). */
SITE static PyObject *leaky_checksum(PyObject *self, PyObject *data)
{
    (void)self;
    char *src;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(data, &src, &len) < 0)
        return NULL;
    unsigned char *copy = PyMem_Malloc(len ? (size_t)len : 1);
    if (!copy)
        return PyErr_NoMemory();
    memcpy(copy, src, (size_t)len);
    unsigned long sum = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        sum += copy[i];
    return PyLong_FromUnsignedLong(sum); /* leak: PyMem_Free(copy) forgotten */
}

/* remember(list, n) -> None: appends bytes(n) to list. PyList_Append takes its own reference,
 * so ours had to be released (the bug: Py_DECREF(item) is missing). */
SITE static PyObject *leaky_remember(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *list, *item;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &list, &n))
        return NULL;
    if (!(item = PyBytes_FromStringAndSize(NULL, n)))
        return NULL;
    memset(PyBytes_AS_STRING(item), 0, (size_t)n);
    if (PyList_Append(list, item) < 0)
        return NULL;
    Py_RETURN_NONE; /* leak: Py_DECREF(item) forgotten */
}

static PyMethodDef leaky_methods[] = {
    {"checksum", leaky_checksum, METH_O, "Sum of the bytes of data (leaks a copy of it)."},
    {"remember", leaky_remember, METH_VARARGS, "Append bytes(n) to list (leaks a reference)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef leaky_module = {
    PyModuleDef_HEAD_INIT,
    "leaky_ext",
    "A C extension with two leaks.",
    -1,
    leaky_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit_leaky_ext(void);

PyMODINIT_FUNC PyInit_leaky_ext(void)
{
    return PyModule_Create(&leaky_module);
}

#ifndef LKD_EXTENSION

#include <sys/wait.h>
#include <unistd.h>

static const char script[] = "import leaky_ext\n"
                             "data = bytes(range(256)) * 16\n"
                             "assert len(data) == 4096\n"
                             "for _ in range(10):\n"
                             "    assert leaky_ext.checksum(data) == 16 * 255 * 256 // 2\n"
                             "items = []\n"
                             "for _ in range(5):\n"
                             "    leaky_ext.remember(items, 1000)\n"
                             "assert [len(b) for b in items] == [1000] * 5\n"
                             "del items\n";

/* The fork child: CPython with the malloc allocator and this module built in; runs script. */
static int run_python(void)
{
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    if (PyStatus_Exception(Py_PreInitialize(&pre)))
        return 2;
    if (PyImport_AppendInittab("leaky_ext", PyInit_leaky_ext) < 0)
        return 2;
    Py_InitializeEx(0);
    int rc = PyRun_SimpleString(script) == 0 ? 0 : 1;
    return Py_FinalizeEx() < 0 ? 1 : rc;
}

int main(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0)
        exit(run_python());
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

#endif
