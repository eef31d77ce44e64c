/* difflib.SequenceMatcher(None, a, b).ratio() for two str, in C.
 *
 * The SRL reward is this ratio. It must be bit-identical to the standard library, so this is a
 * line-by-line port of CPython's algorithm (Lib/difflib.py: __chain_b, find_longest_match,
 * get_matching_blocks, _calculate_ratio) with isjunk=None and autojunk=True:
 *   - b2j: positions of every character of b; when len(b) >= 200, characters occurring more than
 *     len(b)//100 + 1 times are "popular" and dropped from b2j (but are not junk);
 *   - find_longest_match: the dynamic programme over j2len, keeping the earliest longest block,
 *     then extended over equal neighbours (bjunk is empty when isjunk is None, so only the first
 *     pair of extension loops can move);
 *   - the ratio is 2*M/T with M the total size of the matching blocks (order-independent, so the
 *     work queue's order does not matter).
 * What changes is only the data layout: characters become dense ids, b2j a CSR array, and the
 * j2len dictionaries two stamped arrays, so the inner loop touches no Python objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

typedef struct { Py_ssize_t alo, ahi, blo, bhi; } Range;

/* Open-addressing map from a code point to a dense id. */
typedef struct { Py_UCS4 *keys; Py_ssize_t *vals; Py_ssize_t cap; } CharMap;

static int charmap_init(CharMap *m, Py_ssize_t n) {
    Py_ssize_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    m->cap = cap;
    m->keys = (Py_UCS4 *)malloc(sizeof(Py_UCS4) * cap);
    m->vals = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * cap);
    if (!m->keys || !m->vals) return -1;
    for (Py_ssize_t i = 0; i < cap; i++) m->vals[i] = -1;
    return 0;
}

static Py_ssize_t *charmap_slot(CharMap *m, Py_UCS4 c) {
    Py_ssize_t h = (Py_ssize_t)((c * 2654435761u) & (Py_UCS4)(m->cap - 1));
    while (m->vals[h] != -1 && m->keys[h] != c) h = (h + 1) & (m->cap - 1);
    m->keys[h] = c;
    return &m->vals[h];
}

static Py_ssize_t charmap_get(const CharMap *m, Py_UCS4 c) {
    Py_ssize_t h = (Py_ssize_t)((c * 2654435761u) & (Py_UCS4)(m->cap - 1));
    while (m->vals[h] != -1) {
        if (m->keys[h] == c) return m->vals[h];
        h = (h + 1) & (m->cap - 1);
    }
    return -1;
}

typedef struct {
    const Py_UCS4 *a, *b;
    const Py_ssize_t *aid;        /* id of a[i] in b, or -1 */
    const Py_ssize_t *start;      /* CSR offsets per id (popular ids have empty ranges) */
    const Py_ssize_t *pos;        /* positions of each id in b, ascending */
    Py_ssize_t *val[2];           /* j2len rows: value ... */
    long long *stamp[2];          /* ... valid when its stamp equals the row's */
    long long row;
} Matcher;

static void longest(Matcher *s, Py_ssize_t alo, Py_ssize_t ahi, Py_ssize_t blo, Py_ssize_t bhi,
                    Py_ssize_t *oi, Py_ssize_t *oj, Py_ssize_t *ok) {
    Py_ssize_t besti = alo, bestj = blo, bestsize = 0;
    const Py_UCS4 *a = s->a, *b = s->b;
    for (Py_ssize_t i = alo; i < ahi; i++) {
        long long prev = s->row, cur = ++s->row;
        Py_ssize_t *pval = s->val[prev & 1], *cval = s->val[cur & 1];
        long long *pst = s->stamp[prev & 1], *cst = s->stamp[cur & 1];
        Py_ssize_t id = s->aid[i];
        if (id < 0) continue;
        for (Py_ssize_t q = s->start[id]; q < s->start[id + 1]; q++) {
            Py_ssize_t j = s->pos[q];
            if (j < blo) continue;
            if (j >= bhi) break;
            Py_ssize_t k = (j > 0 && pst[j - 1] == prev) ? pval[j - 1] + 1 : 1;
            cval[j] = k;
            cst[j] = cur;
            if (k > bestsize) { besti = i - k + 1; bestj = j - k + 1; bestsize = k; }
        }
    }
    while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) { besti--; bestj--; bestsize++; }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) bestsize++;
    *oi = besti; *oj = bestj; *ok = bestsize;
}

static PyObject *ratio(PyObject *self, PyObject *args) {
    PyObject *sa, *sb;
    if (!PyArg_ParseTuple(args, "UU:ratio", &sa, &sb)) return NULL;
    Py_ssize_t la = PyUnicode_GET_LENGTH(sa), lb = PyUnicode_GET_LENGTH(sb);
    if (la + lb == 0) return PyFloat_FromDouble(1.0);
    if (la == 0 || lb == 0) return PyFloat_FromDouble(0.0);

    PyObject *result = NULL;
    Py_UCS4 *a = PyUnicode_AsUCS4Copy(sa), *b = PyUnicode_AsUCS4Copy(sb);
    CharMap map = {NULL, NULL, 0};
    Py_ssize_t *bid = NULL, *aid = NULL, *count = NULL, *start = NULL, *fill = NULL, *pos = NULL;
    Py_ssize_t *val0 = NULL, *val1 = NULL;
    long long *st0 = NULL, *st1 = NULL;
    Range *stack = NULL;
    if (!a || !b) goto done;
    if (charmap_init(&map, lb) < 0) { PyErr_NoMemory(); goto done; }

    /* __chain_b: dense ids in order of first appearance, then positions per id. */
    bid = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * lb);
    Py_ssize_t nid = 0;
    if (!bid) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t j = 0; j < lb; j++) {
        Py_ssize_t *slot = charmap_slot(&map, b[j]);
        if (*slot == -1) *slot = nid++;
        bid[j] = *slot;
    }
    count = (Py_ssize_t *)calloc(nid, sizeof(Py_ssize_t));
    start = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * (nid + 1));
    fill = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * (nid + 1));
    pos = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * lb);
    if (!count || !start || !fill || !pos) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t j = 0; j < lb; j++) count[bid[j]]++;
    if (lb >= 200) {  /* autojunk: purge popular elements */
        Py_ssize_t ntest = lb / 100 + 1;
        for (Py_ssize_t c = 0; c < nid; c++) if (count[c] > ntest) count[c] = 0;
    }
    start[0] = 0;
    for (Py_ssize_t c = 0; c < nid; c++) { start[c + 1] = start[c] + count[c]; fill[c] = start[c]; }
    for (Py_ssize_t j = 0; j < lb; j++) {
        Py_ssize_t c = bid[j];
        if (count[c]) pos[fill[c]++] = j;
    }
    aid = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * la);
    val0 = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * lb);
    val1 = (Py_ssize_t *)malloc(sizeof(Py_ssize_t) * lb);
    st0 = (long long *)calloc(lb, sizeof(long long));
    st1 = (long long *)calloc(lb, sizeof(long long));
    Py_ssize_t cap = 64, top = 0;
    stack = (Range *)malloc(sizeof(Range) * cap);
    if (!aid || !val0 || !val1 || !st0 || !st1 || !stack) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < la; i++) aid[i] = charmap_get(&map, a[i]);

    /* Stamps start at 1 so the calloc'ed zeros never look valid. */
    Matcher m = {a, b, aid, start, pos, {val0, val1}, {st0, st1}, 1};
    long long matches = 0;
    stack[top++] = (Range){0, la, 0, lb};
    Py_BEGIN_ALLOW_THREADS
    while (top > 0) {
        Range r = stack[--top];
        Py_ssize_t i, j, k;
        longest(&m, r.alo, r.ahi, r.blo, r.bhi, &i, &j, &k);
        m.row++;  /* a new call starts with an empty j2len */
        if (!k) continue;
        matches += k;
        if (top + 2 > cap) {
            Range *grown = (Range *)realloc(stack, sizeof(Range) * cap * 2);
            if (!grown) { matches = -1; break; }
            stack = grown;
            cap *= 2;
        }
        if (r.alo < i && r.blo < j) stack[top++] = (Range){r.alo, i, r.blo, j};
        if (i + k < r.ahi && j + k < r.bhi) stack[top++] = (Range){i + k, r.ahi, j + k, r.bhi};
    }
    Py_END_ALLOW_THREADS
    if (matches < 0) { PyErr_NoMemory(); goto done; }
    result = PyFloat_FromDouble(2.0 * (double)matches / (double)(la + lb));

done:
    PyMem_Free(a); PyMem_Free(b);
    free(map.keys); free(map.vals); free(bid); free(aid); free(count); free(start); free(fill); free(pos);
    free(val0); free(val1); free(st0); free(st1); free(stack);
    return result;
}

static PyMethodDef methods[] = {
    {"ratio", ratio, METH_VARARGS,
     "ratio(a, b) -> difflib.SequenceMatcher(None, a, b).ratio(), bit-identical, computed in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastdiff", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastdiff(void) { return PyModule_Create(&module); }
