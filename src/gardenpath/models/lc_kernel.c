/* Fused CPU kernels for LocallyConnected2d (float32): gather one position's patches into a
 * small buffer that stays in L1, multiply it with that position's filter, and (backward)
 * scatter the input gradient straight back.  No unfolded (L, B, C*kh*kw) tensor is ever
 * materialised, and the small matrix products use a register-tiled micro-kernel written
 * with GCC/Clang vector extensions (compiled with -march=native: AVX-512, AVX2 or NEON).
 *
 * Why: ATen's CPU bmm reaches a fraction of the machine's peak on the B x (C*kh*kw) x O
 * products of a locally connected layer at small batch (benchmarks/results/local.md), and
 * the unfold / fold around it adds copies and memory.  Built and loaded by
 * gardenpath.models.lc_native; every tensor is contiguous row-major float32.
 *
 * Layouts: x (B, C, H, W) is the input and xt (Hp, Wp, C, B) its zero-padded,
 * batch-innermost copy; w (L, K, O) with K = C*kh*kw ordered (c, i, j) as in F.unfold;
 * y and dy (B, O, Ho*Wo); dw (L, K, O); dxt like xt.  Every entry point takes the layer's
 * geometry as one array gm[GM_LEN] (one pointer instead of 13 arguments, each of which
 * ctypes would convert on every call).  Each call handles positions [l0, l1), so callers
 * can split positions across threads.  Timings behind the choices below: the notes in
 * benchmarks/results/README.md, by the name of the code they justify.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

/* One vector is the target's widest: 16 floats with AVX-512, 8 with AVX/AVX2, 4 with SSE
 * or NEON (GCC vectors wider than the hardware's are split into pieces, and a tile's 16
 * accumulators then spilled).  A register tile has 2 * MR accumulators: 8 rows where the
 * target has 32 vector registers, 6 where it has 16 (x86 below AVX-512, where 8 rows
 * spill and ran slower). */
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
#if defined(__x86_64__) && !defined(__AVX512F__)
#define MR 6
#else
#define MR 8
#endif
#define PG 16 /* positions whose output (gradient) is moved between layouts at once */
typedef float vf __attribute__((vector_size(VL * sizeof(float))));

static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* A weight gradient larger than this is written with non-temporal stores: it will not be
 * read again before the next pass evicts it, and skipping the read-for-ownership of every
 * line shortens the weight-gradient pass.  The threshold sits below the last-level cache
 * of the AVX2 machine measured (its copies ran at DRAM speed well before the L3's
 * announced size); with an optimizer that reads the gradient right after, streaming it
 * can cost as much as it saves. */
#ifndef DW_STREAM_MIN_BYTES
#define DW_STREAM_MIN_BYTES (4L << 20)
#endif

/* Store a result vector: streaming (p 64-byte aligned) or not. */
static inline void vstore_to(float *p, vf v, int stream)
{
#if defined(__AVX512F__) && VL == 16
    if (stream) {
        _mm512_stream_ps(p, (__m512)v);
        return;
    }
#elif defined(__AVX__) && VL == 8
    if (stream) {
        _mm256_stream_ps(p, (__m256)v);
        return;
    }
#endif
    (void)stream;
    vstore(p, v);
}

/* Software prefetch of the next position's operand, interleaved with the arithmetic of
 * this one: pf.step bytes per k step, up to two 64-byte lines (no prefetch when NULL).
 * A single core streams 100+ MB of unshared weights far faster this way (measured). */
typedef struct {
    const char *p;
    long step;
    int stream; /* store the result with non-temporal stores (see DW_STREAM_MIN_BYTES) */
    int ahead;  /* also fetch this product's own W rows into L1, PF_AHEAD_ROWS ahead */
    int accum;  /* add the product to c (a block of K after the first) instead of storing */
} prefetch;

/* A product of at most four rows (the forward pass at batch <= 4) has load slots to spare
 * for one more prefetch per k step: W's row PF_AHEAD_ROWS ahead into L1, on top of the
 * next position's into L2.  For full tiles (batch 16, 64) the extra prefetch was slower,
 * so they do not get it. */
#define PF_AHEAD_ROWS 8

/* Where a tile's prefetches start and how far they move per k step; a tile with nothing to
 * prefetch gets a dummy line and step 0, so the k loop has no branch for it. */
static const char pf_dummy[128] __attribute__((aligned(64)));

static inline const char *pf_start(const prefetch *pf, long *step)
{
    int off = !pf->p || pf->stream;
    *step = off ? 0 : pf->step;
    return off ? pf_dummy : pf->p;
}

/* One k step's prefetch: the line at q and, when a step covers two lines, the next one
 * (with a step of one line or less the second falls in the same line or the next: a spare
 * instruction instead of a branch; dropping it measured no faster).  Read prefetches also
 * for the weight gradient: a line no other core holds arrives exclusive, so storing into
 * it later costs nothing more. */
#define PF_STEP(q, step)                                                              \
    do {                                                                              \
        __builtin_prefetch((q), 0, 2);                                                \
        __builtin_prefetch((q) + ((step) >> 1), 0, 2);                                \
        (q) += (step);                                                                \
    } while (0)

/* The left operand A (M x K) of a product: element (m, k) at a[m*ars + k*aks], or, when
 * roff is set, at a[roff[m] + koff[k]] (offset tables: the patches of a position read
 * straight from the padded input, so no patch matrix is ever copied out). */
typedef struct {
    const float *a;
    long ars, aks;
    const long *roff, *koff;
} amat;

/* The two vectors of a filter row stay in registers for the tile's rows: left to itself,
 * GCC folds them into every FMA as a memory operand, one 64-byte load per FMA, and a
 * small tile then runs load-bound. */
#if defined(__x86_64__)
#define KEEP_IN_REGISTERS(a, b) __asm__("" : "+v"(a), "+v"(b))
#elif defined(__aarch64__)
#define KEEP_IN_REGISTERS(a, b) __asm__("" : "+w"(a), "+w"(b))
#else
#define KEEP_IN_REGISTERS(a, b) ((void)0)
#endif

/* One k step of a register tile: acc[r] += A(r, k) * w[k, 0:NV*VL] for r < mr, with A(r, k)
 * at ar[r][ko] (mr and NV constant after inlining: the accumulators live in registers). */
static inline __attribute__((always_inline)) void
tile_step(const int mr, const int nv, vf acc[MR][2], const float *const *ar, long ko,
          const float *wk)
{
    vf w0 = vload(wk);
    vf w1 = nv > 1 ? vload(wk + VL) : (vf){0};
    KEEP_IN_REGISTERS(w0, w1);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        float s = ar[r][ko];
        acc[r][0] += s * w0;
        if (nv > 1) acc[r][1] += s * w1;
    }
}

static inline __attribute__((always_inline)) void
tile_store(const int mr, const int nv, vf acc[MR][2], float *c, long ldc, int stream,
           int accum)
{
    if (accum) {
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            acc[r][0] += vload(c + r * ldc);
            if (nv > 1) acc[r][1] += vload(c + r * ldc + VL);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        vstore_to(c + r * ldc, acc[r][0], stream);
        if (nv > 1) vstore_to(c + r * ldc + VL, acc[r][1], stream);
    }
}

/* c[r, 0:NV*VL] = sum_k a[r*ars + k*aks] * w[k*ldw + 0:NV*VL] for r < mr (the strides
 * constant after inlining too, so the compiler walks A with pointer increments). */
static inline __attribute__((always_inline)) void
tile_s(const int mr, const int nv, long K, const float *a, long ars, long aks,
       const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    vf acc[MR][2];
    long qs;
    const char *q = pf_start(pf, &qs);
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vf){0};
    for (long k = 0; k < K; k++) {
        const float *wk = w + k * ldw;
        vf w0 = vload(wk);
        vf w1 = nv > 1 ? vload(wk + VL) : (vf){0};
        KEEP_IN_REGISTERS(w0, w1);
        PF_STEP(q, qs);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) { /* the indexing the compiler turns into increments */
            float s = a[r * ars + k * aks];
            acc[r][0] += s * w0;
            if (nv > 1) acc[r][1] += s * w1;
        }
    }
    tile_store(mr, nv, acc, c, ldc, pf->stream, pf->accum);
}

/* The same with A read through offset tables: A(r, k) = a[roff[r] + koff[k]]. */
static inline __attribute__((always_inline)) void
tile_ix(const int mr, const int nv, long K, const float *a, const long *roff,
        const long *koff, const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    vf acc[MR][2];
    const float *ar[MR];
    for (int r = 0; r < MR; r++) {
        acc[r][0] = acc[r][1] = (vf){0};
        ar[r] = r < mr ? a + roff[r] : a;
    }
    long qs;
    const char *q = pf_start(pf, &qs);
    if (pf->ahead) {
        for (long k = 0; k < K; k++) {
            PF_STEP(q, qs);
            __builtin_prefetch(w + (k + PF_AHEAD_ROWS) * ldw, 0, 3);
            tile_step(mr, nv, acc, ar, koff[k], w + k * ldw);
        }
    } else {
        for (long k = 0; k < K; k++) {
            PF_STEP(q, qs);
            tile_step(mr, nv, acc, ar, koff[k], w + k * ldw);
        }
    }
    tile_store(mr, nv, acc, c, ldc, pf->stream, pf->accum);
}

#if MR == 8
#define TILE_CASES_78(T, NV, ...)                                                      \
    case 8: T(8, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    case 7: T(7, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;
#else
#define TILE_CASES_78(T, NV, ...)
#endif
#define TILE_CASES(T, NV, ...)                                                         \
    switch (mr) {                                                                      \
    TILE_CASES_78(T, NV, __VA_ARGS__)                                                  \
    case 6: T(6, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    case 5: T(5, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    case 4: T(4, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    case 3: T(3, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    case 2: T(2, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                       \
    default: T(1, NV, K, __VA_ARGS__, w, ldw, c, ldc, pf); break;                      \
    }

/* Strided A has one stride 1 in every call (A or A^T is row-major): making it a
 * compile-time 1 lets the compiler walk A with pointer increments. */
static void tile_n(int nv, int mr, long K, const float *a, long ars, long aks,
                   const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    if (aks == 1) {
        if (nv == 2) { TILE_CASES(tile_s, 2, a, ars, 1) } else { TILE_CASES(tile_s, 1, a, ars, 1) }
    } else if (ars == 1) {
        if (nv == 2) { TILE_CASES(tile_s, 2, a, 1, aks) } else { TILE_CASES(tile_s, 1, a, 1, aks) }
    } else {
        if (nv == 2) { TILE_CASES(tile_s, 2, a, ars, aks) } else { TILE_CASES(tile_s, 1, a, ars, aks) }
    }
}

static void tile_n_ix(int nv, int mr, long K, const float *a, const long *ro, const long *ko,
                      const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    if (nv == 2) { TILE_CASES(tile_ix, 2, a, ro, ko) } else { TILE_CASES(tile_ix, 1, a, ro, ko) }
}

/* One register tile of rows m.. of A (whichever way A is addressed). */
static inline void tile_at(int nv, long m, long M, long K, const amat *A, const float *w,
                           long ldw, float *c, long ldc, const prefetch *pf)
{
    int mr = (int)(M - m < MR ? M - m : MR);
    if (A->roff)
        tile_n_ix(nv, mr, K, A->a, A->roff + m, A->koff, w, ldw, c, ldc, pf);
    else
        tile_n(nv, mr, K, A->a + m * A->ars, A->ars, A->aks, w, ldw, c, ldc, pf);
}

static inline float aget(const amat *A, long m, long k)
{
    return A->roff ? A->a[A->roff[m] + A->koff[k]] : A->a[m * A->ars + k * A->aks];
}

/* One row of A times W, c[0:nv*VL] = sum_k A(0, k) * w[k, 0:nv*VL]: W's rows are read
 * whole and in order (a one-row register tile reads 2 * VL columns per pass over K: with
 * AVX2, every other line of a 32-column W), one stream the hardware prefetcher follows,
 * so no software prefetch: with it (the next position's filter, as gemm does) the forward
 * pass at B = 1 read the weights more slowly. */
static inline __attribute__((always_inline)) void
gemv_nv(const int nv, long K, const amat *A, const float *w, long ldw, float *c, int stream)
{
    vf acc[8];
    for (int v = 0; v < 8; v++) acc[v] = (vf){0};
    for (long k = 0; k < K; k++) {
        float s = aget(A, 0, k);
        const float *wk = w + k * ldw;
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[v] += s * vload(wk + v * VL);
    }
    for (int v = 0; v < nv; v++) vstore_to(c + v * VL, acc[v], stream);
}

/* gemv_nv for N = VL .. 8 * VL, a multiple of VL. */
static void gemv(long N, long K, const amat *A, const float *w, long ldw, float *c,
                 int stream)
{
    switch (N / VL) {
    case 1: gemv_nv(1, K, A, w, ldw, c, stream); break;
    case 2: gemv_nv(2, K, A, w, ldw, c, stream); break;
    case 3: gemv_nv(3, K, A, w, ldw, c, stream); break;
    case 4: gemv_nv(4, K, A, w, ldw, c, stream); break;
    case 5: gemv_nv(5, K, A, w, ldw, c, stream); break;
    case 6: gemv_nv(6, K, A, w, ldw, c, stream); break;
    case 7: gemv_nv(7, K, A, w, ldw, c, stream); break;
    default: gemv_nv(8, K, A, w, ldw, c, stream); break;
    }
}

/* Rows of W per block of a two-vector column strip: the strip's register tiles run over
 * K in blocks of at most GEMM_KC rows (equal blocks), each adding into c after the first,
 * so a block of W stays in cache while the strip's tiles reuse it (it pays at large K, C =
 * 128; at C <= 64 it changes nothing).  Not for streamed stores (a block's partial sums
 * would leave the cache), which only the weight gradient uses, over K = B. */
#define GEMM_KC 256

/* C (M x N, row stride ldc) = A (M x K) @ W (K x N, row stride ldw).  Full vectors through
 * the micro-kernel, the last N % VL columns scalar.  Meanwhile the pf_bytes at pf_next are
 * prefetched (pf_next NULL: none), spread evenly over the k steps: a step moves the
 * prefetch pointer pf_bytes / steps bytes on (rounded up; at most two lines), so a line
 * gets a prefetch or two in consecutive steps and the last one reaches the end of pf_bytes.
 * One line per step ran up to three positions ahead and asked for every line about three
 * times, which was slower (weights from DRAM); two positions ahead was slower again. */
static void gemm(long M, long N, long K, amat A, const float *w, long ldw, float *c,
                 long ldc, const void *pf_next, long pf_bytes, int stream)
{
    if (M == 1 && N % VL == 0 && N >= VL && N <= 8 * VL) { /* B = 1: forward, dX fallback */
        gemv(N, K, &A, w, ldw, c, stream);
        return;
    }
    long tiles = ((N / (2 * VL)) + (N % (2 * VL) >= VL)) * ((M + MR - 1) / MR);
    long steps = tiles * K, lines = (pf_bytes + 63) / 64;
    prefetch pf = {(const char *)pf_next, lines > steps ? 128 : (64 * lines + steps - 1) / steps,
                   stream, M <= 4, 0};
    if (steps == 0) pf.p = NULL;
    long blocks = stream || K <= GEMM_KC ? 1 : (K + GEMM_KC - 1) / GEMM_KC;
    long kc = (K + blocks - 1) / blocks, n = 0;
    for (; n + 2 * VL <= N; n += 2 * VL) {
        for (long k0 = 0; k0 < K; k0 += kc) {
            long kb = K - k0 < kc ? K - k0 : kc;
            amat Ak = A; /* A's columns k0 .. */
            if (Ak.roff) Ak.koff += k0;
            else Ak.a += k0 * Ak.aks;
            pf.accum = k0 > 0;
            for (long m = 0; m < M; m += MR) {
                tile_at(2, m, M, kb, &Ak, w + k0 * ldw + n, ldw, c + m * ldc + n, ldc, &pf);
                if (pf.p) pf.p += kb * pf.step;
            }
        }
    }
    pf.accum = 0;
    for (; n + VL <= N; n += VL)
        for (long m = 0; m < M; m += MR) {
            tile_at(1, m, M, K, &A, w + n, ldw, c + m * ldc + n, ldc, &pf);
            if (pf.p) pf.p += K * pf.step;
        }
    for (; n < N; n++)
        for (long m = 0; m < M; m++) {
            float s = 0.f;
            for (long k = 0; k < K; k++) s += aget(&A, m, k) * w[k * ldw + n];
            c[m * ldc + n] = s;
        }
}

static inline amat strided(const float *a, long ars, long aks)
{
    amat A = {a, ars, aks, NULL, NULL};
    return A;
}

/* Geometry.  The input (and its gradient) is held batch-innermost, zero-padded:
 * xt[h, w, c, b] of shape (Hp, Wp, C, B).  Then patch element (b, k = (c, i, j)) of output
 * position l sits at corner(l) + koff[k] + b: a position's patch matrix is read in place
 * (no unfolded copy), and for a fixed k its B batch entries are contiguous. */
typedef struct {
    long B, C, Hp, Wp, kh, kw, sh, sw, Wo, O, L;
} geom;

/* gm[] = {B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O}: what the caller passes. */
enum { GM_B, GM_C, GM_H, GM_W, GM_PH, GM_PW, GM_KH, GM_KW, GM_SH, GM_SW, GM_HO, GM_WO, GM_O,
       GM_LEN };

static geom geom_of(const long *gm)
{
    geom g = {gm[GM_B], gm[GM_C], gm[GM_H] + 2 * gm[GM_PH], gm[GM_W] + 2 * gm[GM_PW],
              gm[GM_KH], gm[GM_KW], gm[GM_SH], gm[GM_SW], gm[GM_WO], gm[GM_O],
              gm[GM_HO] * gm[GM_WO]};
    return g;
}

static inline long corner(const geom *g, long l)
{
    return ((l / g->Wo) * g->sh * g->Wp + (l % g->Wo) * g->sw) * g->C * g->B;
}

/* koff[k] for k = (c, i, j), then boff[b] = b.  NULL if out of memory. */
static long *patch_offsets(const geom *g)
{
    long K = g->C * g->kh * g->kw, k = 0;
    long *off = malloc((size_t)(K + g->B) * sizeof *off);
    if (!off) return NULL;
    for (long c = 0; c < g->C; c++)
        for (long i = 0; i < g->kh; i++)
            for (long j = 0; j < g->kw; j++) off[k++] = ((i * g->Wp + j) * g->C + c) * g->B;
    for (long b = 0; b < g->B; b++) off[K + b] = b;
    return off;
}

/* dxt[corner + koff[k] + b] += e[b*K + k]: a position's (B x K) patch gradient, added back. */
static inline __attribute__((always_inline)) void
scatter_add_nb(const int nb, long K, float *d, const long *koff, const float *e)
{
    for (long k = 0; k < K; k++) /* the nb adds of one k land on one cache line */
#pragma GCC unroll 16
        for (int b = 0; b < nb; b++) d[koff[k] + b] += e[b * K + k];
}

static void scatter_add(const geom *g, float *dxt, long l, const long *koff, const float *e)
{
    long K = g->C * g->kh * g->kw, B = g->B;
    float *d = dxt + corner(g, l);
    switch (B) {
    case 1: scatter_add_nb(1, K, d, koff, e); break;
    case 2: scatter_add_nb(2, K, d, koff, e); break;
    case 3: scatter_add_nb(3, K, d, koff, e); break;
    case 4: scatter_add_nb(4, K, d, koff, e); break;
    case 8: scatter_add_nb(8, K, d, koff, e); break;
    default:
        for (long b = 0; b < B; b++)
            for (long k = 0; k < K; k++) d[koff[k] + b] += e[b * K + k];
    }
}

/* The same from e^T (K x B) with B a multiple of VL: one vector add per VL batch entries. */
static void scatter_add_t(const geom *g, float *dxt, long l, const long *koff, const float *et)
{
    long K = g->C * g->kh * g->kw, B = g->B;
    float *d = dxt + corner(g, l);
    for (long k = 0; k < K; k++)
        for (long b = 0; b < B; b += VL)
            vstore(d + koff[k] + b, vload(d + koff[k] + b) + vload(et + k * B + b));
}

/* The register transposes and the small-batch paths below need GCC's two-source shuffles
 * and broadcast loads of 2, 4 or 8 floats: 16-float vectors (AVX-512) or 8-float ones with
 * AVX2; elsewhere the element-by-element and gemm paths serve. */
#if defined(__GNUC__) && !defined(__clang__) && (VL == 16 || (VL == 8 && defined(__AVX2__)))
#define HAVE_SHUFFLES 1
typedef int vi __attribute__((vector_size(VL * sizeof(int))));
#endif

#ifdef HAVE_SHUFFLES
/* Stage st of a VL x VL transpose swaps the off-diagonal S x S sub-blocks of every 2S x 2S
 * block, S = VL / 2 >> st: rows i and i + S (i & S == 0) become the two-source shuffles of
 * them by STAGE_LO[st] and STAGE_HI[st] (one vpermt2ps each on AVX-512). */
#if VL == 16
#define STAGES 4
static const vi STAGE_LO[STAGES] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
    {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
    {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
    {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
static const vi STAGE_HI[STAGES] = {
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
    {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
    {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
    {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
#else
#define STAGES 3
static const vi STAGE_LO[STAGES] = {{0, 1, 2, 3, 8, 9, 10, 11},
                                    {0, 1, 8, 9, 4, 5, 12, 13},
                                    {0, 8, 2, 10, 4, 12, 6, 14}};
static const vi STAGE_HI[STAGES] = {{4, 5, 6, 7, 12, 13, 14, 15},
                                    {2, 3, 10, 11, 6, 7, 14, 15},
                                    {1, 9, 3, 11, 5, 13, 7, 15}};
#endif

/* r[0 .. VL - 1], the rows of a VL x VL block, become its columns (in registers). */
static inline __attribute__((always_inline)) void transpose_regs(vf r[VL])
{
    vf t[VL];
#pragma GCC unroll 4
    for (int st = 0; st < STAGES; st++) {
        int S = VL / 2 >> st;
#pragma GCC unroll 16
        for (int i = 0; i < VL; i++)
            if (!(i & S)) {
                t[i] = __builtin_shuffle(r[i], r[i + S], STAGE_LO[st]);
                t[i + S] = __builtin_shuffle(r[i], r[i + S], STAGE_HI[st]);
            }
        for (int i = 0; i < VL; i++) r[i] = t[i];
    }
}

/* The VL x VL block at src (row stride lds) transposed into dst (row stride ldd). */
static void transpose_block(const float *src, long lds, float *dst, long ldd)
{
    vf r[VL];
    for (int i = 0; i < VL; i++) r[i] = vload(src + i * lds);
    transpose_regs(r);
    for (int i = 0; i < VL; i++) vstore(dst + i * ldd, r[i]);
}

/* The same, adding to each row i of dst the row (o + i) mod O of bias (row stride ldb,
 * o < O) on the way out, so the output is not read back for its bias. */
static void transpose_block_bias(const float *src, long lds, float *dst, long ldd,
                                 const float *bias, long ldb, long o, long O)
{
    vf r[VL];
    for (int i = 0; i < VL; i++) r[i] = vload(src + i * lds);
    transpose_regs(r);
    for (int i = 0; i < VL; i++) {
        vstore(dst + i * ldd, r[i] + vload(bias + o * ldb));
        o = o + 1 == O ? 0 : o + 1;
    }
}
#endif

#ifdef HAVE_SHUFFLES
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));

/* Input gradient for B <= 8 by broadcast groups: with NB >= B batch lanes (a power of two)
 * and G = VL / NB, lane b*G + j of a vector holds batch entry b and output channel c*G + j.
 * Row k of w is read G channels at a time, each group repeated NB times by one broadcast
 * load, and multiplied with dyq[c] (lanes b*G + j = dy[b, c*G + j], zero for b >= B): after
 * the O / G chunks, acc[r] holds, per batch entry, G partial sums of row k0 + r's dot
 * products.  Summing adjacent lanes log2(G) times (pair_sums) leaves NB vectors holding VL
 * rows x NB batch entries, row-major: each row adds into the padded gradient at koff[k] as
 * one NB-wide vector.  Per 16 rows (VL = 16): O*NB FMAs (as many broadcast loads) and
 * 2*(16 - NB) shuffles, where transposing 16 x 16 blocks of w in registers took 96 shuffles
 * per 128 FMAs at B = 4, and a w^T copy per position (AVX2) spent most of its time on the
 * transpose. */
#if VL == 16
static const vi EVEN = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const vi ODD = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
#else
static const vi EVEN = {0, 2, 4, 6, 8, 10, 12, 14};
static const vi ODD = {1, 3, 5, 7, 9, 11, 13, 15};
#endif

/* Lanes 0 .. VL/2 - 1: sums of adjacent lane pairs of a; the rest: the same of b. */
static inline vf pair_sums(vf a, vf b)
{
    return __builtin_shuffle(a, b, EVEN) + __builtin_shuffle(a, b, ODD);
}

/* The G floats at p, repeated across a vector (one broadcast load on AVX-512; GCC turns
 * a generic repeat of a short vector into a trip through the stack). */
static inline __attribute__((always_inline)) vf bcast_group(const int G, const float *p)
{
    if (G == VL) return vload(p);
#if defined(__AVX512F__)
    __m512 v;
    if (G == 8) v = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)p)));
    else if (G == 4) v = _mm512_broadcast_f32x4(_mm_loadu_ps(p));
    else {
        double pair;
        memcpy(&pair, p, sizeof pair);
        v = _mm512_castpd_ps(_mm512_set1_pd(pair));
    }
    vf r;
    memcpy(&r, &v, sizeof r);
    return r;
#else
    __m256 v;
    if (G == 4) v = _mm256_broadcast_ps((const __m128 *)p);
    else if (G == 2) v = _mm256_castpd_ps(_mm256_broadcast_sd((const double *)p));
    else v = _mm256_broadcast_ss(p);
    vf r;
    memcpy(&r, &v, sizeof r);
    return r;
#endif
}

#if defined(__AVX512F__)
/* Within each 128-bit lane: sums of adjacent pairs of a, then of b (vshufps, cheaper than
 * the two-source permutes of pair_sums). */
static inline __m512 lane_pair_sums(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xdd));
}

/* x permuted by order holds rows r0 .. r0 + 3 by 128-bit lane, each row's four batch
 * entries: those below kb add into d + koff[row]. */
static inline __attribute__((always_inline)) void
add_rows4(__m512 x, __m512i order, int r0, int kb, float *d, const long *koff)
{
    x = _mm512_permutexvar_ps(order, x);
    __m128 q[4] = {_mm512_castps512_ps128(x), _mm512_extractf32x4_ps(x, 1),
                   _mm512_extractf32x4_ps(x, 2), _mm512_extractf32x4_ps(x, 3)};
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        if (r0 + i < kb) {
            float *dr = d + koff[r0 + i];
            _mm_storeu_ps(dr, _mm_add_ps(_mm_loadu_ps(dr), q[i]));
        }
}
#endif

static void dw_rows(long B, long K, long O, const float *x, const long *koff, const float *gl,
                    float *dw, int stream);

/* Rows k0 .. k0 + kb - 1 (kb <= VL) of one position's input gradient, added at d; dwl
 * non-NULL: also the same rows of its weight gradient, dwl = x^T gl (dw_rows, x the patch),
 * written once the rows' FMAs are issued (see bwd.fuse). */
static inline __attribute__((always_inline)) void
dx_bcast_rows(const int G, const int kb, long B, long O, const float *dyq, const float *w,
              float *d, const long *koff, const float *x, const float *gl, float *dwl,
              int stream)
{
    const int NB = VL / G;
    vf acc[VL];
    for (int r = 0; r < VL; r++) acc[r] = (vf){0};
    long c = 0, nc = O / G;
    /* four chunks per sweep down the rows: the row pointer moves by O once per row (the
     * empty asm keeps GCC from holding 16 row offsets in registers, which spilled) */
    for (; c + 4 <= nc; c += 4) {
        vf q0 = vload(dyq + c * VL), q1 = vload(dyq + (c + 1) * VL),
           q2 = vload(dyq + (c + 2) * VL), q3 = vload(dyq + (c + 3) * VL);
        const float *p = w + c * G;
#pragma GCC unroll 16
        for (int r = 0; r < VL; r++) {
            if (r < kb) {
                acc[r] += bcast_group(G, p) * q0;
                acc[r] += bcast_group(G, p + G) * q1;
                acc[r] += bcast_group(G, p + 2 * G) * q2;
                acc[r] += bcast_group(G, p + 3 * G) * q3;
            }
            p += O;
            __asm__("" : "+r"(p));
        }
    }
    if (dwl) dw_rows(B, kb, O, x, koff, gl, dwl, stream);
    for (; c < nc; c++) {
        vf q = vload(dyq + c * VL);
        const float *p = w + c * G;
#pragma GCC unroll 16
        for (int r = 0; r < VL; r++) {
            if (r < kb) acc[r] += bcast_group(G, p) * q;
            p += O;
            __asm__("" : "+r"(p));
        }
    }
#if defined(__AVX512F__)
    if (G == 4 && B == 4) {
        /* two rounds of in-lane pair sums (vshufps: cheaper than two-source permutes) leave
         * 128-bit lane b of acc[m] holding rows 4m .. 4m + 3 of batch entry b; one permute
         * per vector makes that (row, b) and each row adds into d as one 4-wide vector */
        const __m512i tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7,
                                             11, 15);
        __m512 a[16];
        memcpy(a, acc, sizeof a);
#pragma GCC unroll 2
        for (int n = 16; n > 4; n >>= 1)
#pragma GCC unroll 8
            for (int m = 0; m < n / 2; m++) a[m] = lane_pair_sums(a[2 * m], a[2 * m + 1]);
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) add_rows4(a[m], tr, 4 * m, kb, d, koff);
        return;
    }
#endif
#pragma GCC unroll 4
    for (int n = VL; n > NB; n >>= 1)
#pragma GCC unroll 8
        for (int m = 0; m < n / 2; m++) acc[m] = pair_sums(acc[2 * m], acc[2 * m + 1]);
    float e[VL * 8];
    memcpy(e, acc, (size_t)NB * sizeof(vf)); /* e[r*NB + b], row r of these VL */
    for (int r = 0; r < kb; r++) {
        float *dr = d + koff[r];
        if (B == 4 && NB == 4) {
            vf4 a, x;
            memcpy(&a, dr, sizeof a);
            memcpy(&x, e + r * 4, sizeof x);
            a += x;
            memcpy(dr, &a, sizeof a);
        } else if (B == 8 && NB == 8) {
            vf8 a, x;
            memcpy(&a, dr, sizeof a);
            memcpy(&x, e + r * 8, sizeof x);
            a += x;
            memcpy(dr, &a, sizeof a);
        } else {
            for (long b = 0; b < B; b++) dr[b] += e[r * NB + b];
        }
    }
}

/* One line per KB of the next position's K x O filter (none if next is NULL): the hardware
 * prefetcher streams the rest once started (with AVX-512, prefetching every line, or
 * none, was slower).  Without AVX-512 none: on the AVX2 machine measured the backward
 * call was faster without it.  The ISA stands in for the machine here: two machines
 * measured, one of each. */
static inline void prefetch_filter(const float *next, long K, long O)
{
#if defined(__AVX512F__)
    if (next)
        for (long q = 0; q < 4 * K * O; q += 64 * 16)
            __builtin_prefetch((const char *)next + q, 0, 2);
#else
    (void)next, (void)K, (void)O;
#endif
}

/* dwl non-NULL: also dwl = x^T gl, block by block with the input gradient's rows. */
static inline __attribute__((always_inline)) void
dx_bcast_g(const int G, long B, long K, long O, const float *gl, const float *wl,
           const float *next, float *d, const long *koff, float *dyq, const float *x,
           float *dwl, int stream)
{
    const int NB = VL / G;
    for (long c = 0; c < O / G; c++)
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < G; j++)
                dyq[c * VL + b * G + j] = b < B ? gl[b * O + c * G + j] : 0.f;
    prefetch_filter(next, K, O);
    long k0 = 0;
    for (; k0 + VL <= K; k0 += VL)
        dx_bcast_rows(G, VL, B, O, dyq, wl + k0 * O, d, koff + k0, x, gl,
                      dwl ? dwl + k0 * O : NULL, stream);
    if (k0 < K)
        dx_bcast_rows(G, (int)(K - k0), B, O, dyq, wl + k0 * O, d, koff + k0, x, gl,
                      dwl ? dwl + k0 * O : NULL, stream);
}

#if defined(__AVX512F__)
/* Input gradient at batch 4 (G = 8) or 8 (G = 4): as dx_bcast_g, but with the batch
 * entries in two halves (dyq vector 2c + p: lanes bl*G + j = dy[NB*p + bl, G*c + j], NB =
 * 16 / G), so that each broadcast of G floats of a filter row feeds two FMAs.  An FMA with
 * a broadcast operand of its own runs well below the compute ceiling, a broadcast shared
 * by two FMAs close to it: the FMAs gain more than the extra round of pair sums costs at
 * G = 8 (at O = 32, 30 shuffles per 64 FMAs against 28 per 128). */

/* Broadcast of the G = 8 or 4 floats at p. */
static inline __m512 pair_bcast(const int G, const float *p)
{
    if (G == 8)
        return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)p)));
    return _mm512_broadcast_f32x4(_mm_loadu_ps(p));
}

/* Rows kb <= 8 of one position's input gradient from w (row stride O), added at
 * d + koff[r]. */
static inline __attribute__((always_inline)) void
dx_pairs_rows(const int G, const int kb, long O, const float *dyq, const float *w, float *d,
              const long *koff)
{
    __m512 acc[8][2];
    for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const long nc = O / G;
    long c = 0;
    for (; c + 2 <= nc; c += 2) {
        const __m512 q00 = _mm512_loadu_ps(dyq + (2 * c) * VL),
                     q01 = _mm512_loadu_ps(dyq + (2 * c + 1) * VL),
                     q10 = _mm512_loadu_ps(dyq + (2 * c + 2) * VL),
                     q11 = _mm512_loadu_ps(dyq + (2 * c + 3) * VL);
        const float *p = w + c * G;
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (r < kb) {
                __m512 w0 = pair_bcast(G, p), w1 = pair_bcast(G, p + G);
                acc[r][0] = _mm512_fmadd_ps(w0, q00, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(w0, q01, acc[r][1]);
                acc[r][0] = _mm512_fmadd_ps(w1, q10, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(w1, q11, acc[r][1]);
            }
            p += O;
            __asm__("" : "+r"(p));
        }
    }
    /* the last chunk when O / G is odd (one inline sweep for both, its chunk count a
     * parameter, was slower) */
    for (; c < nc; c++) {
        const __m512 q0 = _mm512_loadu_ps(dyq + (2 * c) * VL),
                     q1 = _mm512_loadu_ps(dyq + (2 * c + 1) * VL);
        const float *p = w + c * G;
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (r < kb) {
                __m512 w0 = pair_bcast(G, p);
                acc[r][0] = _mm512_fmadd_ps(w0, q0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(w0, q1, acc[r][1]);
            }
            p += O;
            __asm__("" : "+r"(p));
        }
    }
    __m512 u[8], v[4];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) u[r] = lane_pair_sums(acc[r][0], acc[r][1]);
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) v[m] = lane_pair_sums(u[2 * m], u[2 * m + 1]);
    if (G == 4) {
        /* acc[r][p], 128-bit lane bl: entry 4p + bl, channels j = 0..3; the two rounds
         * leave in v[m], element 4*bl + 2*rr + p, row 2m + rr's sum for entry 4p + bl; one
         * permute orders it (row, entry), and each half adds into its row as 8 floats */
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3,
                                                7, 11, 15);
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            __m512 x = _mm512_permutexvar_ps(order, v[m]);
            __m256 h[2] = {_mm512_castps512_ps256(x),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))};
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++)
                if (2 * m + i < kb) {
                    float *dr = d + koff[2 * m + i];
                    _mm256_storeu_ps(dr, _mm256_add_ps(_mm256_loadu_ps(dr), h[i]));
                }
        }
        return;
    }
    /* G = 8: acc[r][p], 128-bit lane 2*bl + h: entry 2p + bl, channels j = 4h .. 4h + 3.
     * The two rounds leave in v[m], lane 2*bl + h, element 2*rr + p: row 2m + rr, entry
     * 2p + bl, summed over its four j; adding lanes h = 0 and 1 of v[2n] and v[2n + 1]
     * gives x[n], lane 2*s + bl, element 2*rr + p: row 4n + 2s + rr; one permute orders
     * it (row, entry): out element (2s + rr)*4 + 2p + bl <- x element (2s + bl)*4 + 2rr + p */
    const __m512i order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14,
                                            11, 15);
#pragma GCC unroll 2
    for (int n = 0; n < 2; n++)
        add_rows4(_mm512_add_ps(_mm512_shuffle_f32x4(v[2 * n], v[2 * n + 1], 0x88),
                                _mm512_shuffle_f32x4(v[2 * n], v[2 * n + 1], 0xdd)),
                  order, 4 * n, kb, d, koff);
}

/* One position's input gradient at batch 4 (G = 8, O a multiple of 8) or 8 (G = 4, O a
 * multiple of 4) by dx_pairs_rows: each row's B entries add into d as one vector, so not
 * at B = 3 or 5..7. */
static inline __attribute__((always_inline)) void
dx_pairs_g(const int G, long K, long O, const float *gl, const float *wl, const float *next,
           float *d, const long *koff, float *dyq)
{
    const int NB = VL / G;
    for (long c = 0; c < O / G; c++)
        for (int p = 0; p < 2; p++)
            for (int bl = 0; bl < NB; bl++)
                memcpy(dyq + (2 * c + p) * VL + bl * G, gl + (NB * p + bl) * O + G * c,
                       (size_t)G * sizeof *dyq);
    prefetch_filter(next, K, O);
    long k0 = 0;
    for (; k0 + 8 <= K; k0 += 8) dx_pairs_rows(G, 8, O, dyq, wl + k0 * O, d, koff + k0);
    if (k0 < K) dx_pairs_rows(G, (int)(K - k0), O, dyq, wl + k0 * O, d, koff + k0);
}

static void dx_pairs(long B, long K, long O, const float *gl, const float *wl,
                     const float *next, float *d, const long *koff, float *dyq)
{
    if (B == 4) dx_pairs_g(8, K, O, gl, wl, next, d, koff, dyq);
    else dx_pairs_g(4, K, O, gl, wl, next, d, koff, dyq);
}
#endif

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#define AVX2_PATHS 1
/* Input gradient at batch 4 with AVX2, for O >= 64: dx_bcast_g's scheme with the batch in
 * two halves (as dx_pairs with AVX-512), so that each 128-bit broadcast of four filter
 * weights feeds two FMAs; dyq vector 2c + p, lane 4*bl + j = dy[2*bl + p, 4c + j].  Rows
 * go four at a time (eight accumulators), each four ending in six horizontal adds and two
 * permutes.  At O = 32 and below the reduction costs what the FMAs gain (per four rows
 * half the FMAs of O = 64 against the same reduction), so not there. */
static inline __attribute__((always_inline)) void
dx_quad_rows(const int kb, long O, const float *dyq, const float *w, float *d,
             const long *koff)
{
    __m256 acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long c = 0; c < O / 4; c += 2) {
        const __m256 q00 = _mm256_loadu_ps(dyq + (2 * c) * 8),
                     q01 = _mm256_loadu_ps(dyq + (2 * c + 1) * 8),
                     q10 = _mm256_loadu_ps(dyq + (2 * c + 2) * 8),
                     q11 = _mm256_loadu_ps(dyq + (2 * c + 3) * 8);
        const float *p = w + c * 4;
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r < kb) {
                __m256 w0 = _mm256_broadcast_ps((const __m128 *)p),
                       w1 = _mm256_broadcast_ps((const __m128 *)(p + 4));
                acc[r][0] = _mm256_fmadd_ps(w0, q00, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(w0, q01, acc[r][1]);
                acc[r][0] = _mm256_fmadd_ps(w1, q10, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(w1, q11, acc[r][1]);
            }
            p += O;
            __asm__("" : "+r"(p));
        }
    }
    /* acc[r][p], lane 4*bl + j: one hadd per row gives [b0 j01, b0 j23, b1 j01, b1 j23 |
     * b2 .., b3 ..]; one per pair of rows r, s then [r b0, r b1, s b0, s b1 | r b2, r b3,
     * s b2, s b3], which a 64-bit permute orders row by row */
    __m256 h[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) h[r] = _mm256_hadd_ps(acc[r][0], acc[r][1]);
#pragma GCC unroll 2
    for (int m = 0; m < 2; m++) {
        __m256 v = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_hadd_ps(h[2 * m], h[2 * m + 1])),
                                  0xd8));
        __m128 e[2] = {_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)};
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
            if (2 * m + i < kb) {
                float *dr = d + koff[2 * m + i];
                _mm_storeu_ps(dr, _mm_add_ps(_mm_loadu_ps(dr), e[i]));
            }
    }
}

/* One position's input gradient at batch 4 (O a multiple of 8; dyq: 4*O floats) by
 * dx_quad_rows; dwl non-NULL: its weight gradient too, eight rows after each eight. */
static void dx_quads(long K, long O, const float *gl, const float *wl, const float *next,
                     float *d, const long *koff, float *dyq, const float *x, float *dwl,
                     int stream)
{
    for (long c = 0; c < O / 4; c++)
        for (int p = 0; p < 2; p++)
            for (int bl = 0; bl < 2; bl++)
                memcpy(dyq + (2 * c + p) * 8 + 4 * bl, gl + (2 * bl + p) * O + 4 * c,
                       4 * sizeof *dyq);
    prefetch_filter(next, K, O);
    long k0 = 0;
    for (; k0 + 8 <= K; k0 += 8) {
        dx_quad_rows(4, O, dyq, wl + k0 * O, d, koff + k0);
        dx_quad_rows(4, O, dyq, wl + (k0 + 4) * O, d, koff + k0 + 4);
        if (dwl) dw_rows(4, 8, O, x, koff + k0, gl, dwl + k0 * O, stream);
    }
    if (k0 == K) return;
    for (long k = k0; k < K; k += 4)
        dx_quad_rows((int)(K - k < 4 ? K - k : 4), O, dyq, wl + k * O, d, koff + k);
    if (dwl) dw_rows(4, K - k0, O, x, koff + k0, gl, dwl + k0 * O, stream);
}

/* dr[b] += the sum of acc[b]'s lanes, b < NB (acc[b] for b >= NB are zero). */
static inline __attribute__((always_inline)) void add_lane_sums(const int NB, __m256 acc[4],
                                                                 float *dr)
{
    /* two rounds of hadd leave [b0 .. b3 over lanes 0-3 | the same over lanes 4-7] */
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    __m128 e = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    if (NB == 4) {
        _mm_storeu_ps(dr, _mm_add_ps(_mm_loadu_ps(dr), e));
    } else {
        float t[4];
        _mm_storeu_ps(t, e);
        for (int b = 0; b < NB; b++) dr[b] += t[b];
    }
}

/* Both gradients of one position at batch NB <= 4 with AVX2 and O = 8 * NV, NV <= 4, row
 * by row (bwd.fuse): each output-gradient vector gl[b, 8v ..] is loaded once per row and
 * feeds the input gradient's FMA (acc[b] += w[k, 8v ..] * it, summed across lanes per row)
 * and the weight gradient's (dW[k, 8v ..] += x[k, b] * it), so the streamed stores of dW
 * go out two lines per row between FMAs instead of sixteen lines per eight rows.  Not at
 * O = 64 (eight filter vectors a row do not fit in the registers with the rest; dx_quads
 * and dx_bcast serve).  Now used for O = 24 only: dxdw_blocks, below, took over the
 * others. */
static inline __attribute__((always_inline)) void
dxdw_rows(const int NB, const int NV, long K, long O, const float *gl, const float *wl,
          float *d, const long *koff, const float *x, float *dwl, int stream)
{
    for (long k = 0; k < K; k++) {
        const float *wk = wl + k * O, *xk = x + koff[k];
        __m256 wv[4], acc[4], s[4];
        for (int v = 0; v < NV; v++) wv[v] = _mm256_loadu_ps(wk + 8 * v);
        for (int b = 0; b < 4; b++) {
            acc[b] = _mm256_setzero_ps();
            s[b] = b < NB ? _mm256_broadcast_ss(xk + b) : _mm256_setzero_ps();
        }
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 a = _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int b = 0; b < NB; b++) {
                __m256 g = _mm256_loadu_ps(gl + b * O + 8 * v);
                acc[b] = _mm256_fmadd_ps(wv[v], g, acc[b]);
                a = _mm256_fmadd_ps(s[b], g, a);
            }
            float *dst = dwl + k * O + 8 * v;
            if (stream) _mm256_stream_ps(dst, a);
            else _mm256_storeu_ps(dst, a);
        }
        add_lane_sums(NB, acc, d + koff[k]);
    }
}

/* dW[k, 8(v0 + j) ..] = sum_b x[k, b] * g[b][j] for j < nv (nv 1 or 2), the output-gradient
 * vectors g held in registers, summed over b in order (as dxdw_rows sums). */
static inline __attribute__((always_inline)) void
dw_row(const int NB, const int nv, const float *xk, __m256 g[4][2], float *dst, int stream)
{
    __m256 s = _mm256_broadcast_ss(xk), a[2];
    for (int j = 0; j < nv; j++) a[j] = _mm256_mul_ps(s, g[0][j]);
    for (int b = 1; b < NB; b++) {
        s = _mm256_broadcast_ss(xk + b);
        for (int j = 0; j < nv; j++) a[j] = _mm256_fmadd_ps(s, g[b][j], a[j]);
    }
    for (int j = 0; j < nv; j++) vstore_to(dst + 8 * j, (vf)a[j], stream);
}

/* dW rows [k0, k1) of one position for the output-gradient vectors v0 .. v0 + nv - 1 (nv
 * 1 or 2), which stay in registers. */
static inline __attribute__((always_inline)) void
dw_block(const int NB, const int nv, int v0, long k0, long k1, long O, const float *gl,
         const long *koff, const float *x, float *dwl, int stream)
{
    __m256 g[4][2];
    for (int b = 0; b < NB; b++)
        for (int j = 0; j < nv; j++) g[b][j] = _mm256_loadu_ps(gl + b * O + 8 * (v0 + j));
    for (long k = k0; k < k1; k++)
        dw_row(NB, nv, x + koff[k], g, dwl + k * O + 8 * v0, stream);
}

/* Rows [k0, k1) of one position: the input gradient, dX[k, b] += sum_o w[k, o] * gl[b, o],
 * and the weight gradient's first two output-gradient vectors (or its only one), dW[k, 8v
 * ..] = sum_b x[k, b] * gl[b, 8v ..] for v < 2, both with those vectors in registers (the
 * others are read by their FMAs from L1); summed in the order dxdw_rows sums. */
static inline __attribute__((always_inline)) void
dxdw_block(const int NB, const int NV, long k0, long k1, long O, const float *gl,
           const float *wl, float *d, const long *koff, const float *x, float *dwl,
           int stream)
{
    const int nh = NV < 2 ? NV : 2; /* vectors held */
    __m256 g[4][2];
    for (int b = 0; b < NB; b++)
        for (int v = 0; v < nh; v++) g[b][v] = _mm256_loadu_ps(gl + b * O + 8 * v);
    for (long k = k0; k < k1; k++) {
        const float *wk = wl + k * O, *xk = x + koff[k];
        __m256 acc[4];
        for (int b = 0; b < 4; b++) acc[b] = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 w = _mm256_loadu_ps(wk + 8 * v);
#pragma GCC unroll 4
            for (int b = 0; b < NB; b++)
                acc[b] = _mm256_fmadd_ps(
                    w, v < 2 ? g[b][v] : _mm256_loadu_ps(gl + b * O + 8 * v), acc[b]);
        }
        dw_row(NB, nh, xk, g, dwl + k * O, stream);
        add_lane_sums(NB, acc, d + koff[k]);
    }
}

/* Both gradients of one position at batch NB <= 4 and O = 8, 16 or 32 (NV = 1, 2, 4), by
 * blocks of DXDW_BLOCK rows: dxdw_block, then for O = 32 the weight gradient's other two
 * vectors (dw_block).  Row by row (dxdw_rows), the sixteen output-gradient vectors of B =
 * 4, O = 32 do not fit in the sixteen registers next to the rest, so every FMA read its
 * operand from L1 (41 loads a row for 32 FMAs); here 21 (for O = 16, 7 instead of 23).
 * Blocks short enough that the streamed dW stores keep going out while the input gradient
 * computes; writing each block's dW first, then its input gradient, bunched the streamed
 * stores up.  Not for O = 24: a 96-byte row's lines would get their streamed stores in two
 * sweeps. */
#define DXDW_BLOCK 16
static inline __attribute__((always_inline)) void
dxdw_blocks(const int NB, const int NV, long K, long O, const float *gl, const float *wl,
            float *d, const long *koff, const float *x, float *dwl, int stream)
{
    for (long k0 = 0; k0 < K; k0 += DXDW_BLOCK) {
        long k1 = k0 + DXDW_BLOCK < K ? k0 + DXDW_BLOCK : K;
        dxdw_block(NB, NV, k0, k1, O, gl, wl, d, koff, x, dwl, stream);
        if (NV > 2) dw_block(NB, NV - 2, 2, k0, k1, O, gl, koff, x, dwl, stream);
    }
}

#define DXDW_NV(NB)                                                                        \
    switch (O / 8) {                                                                       \
    case 1: dxdw_blocks(NB, 1, K, O, gl, wl, d, koff, x, dwl, stream); break;              \
    case 2: dxdw_blocks(NB, 2, K, O, gl, wl, d, koff, x, dwl, stream); break;              \
    case 3: dxdw_rows(NB, 3, K, O, gl, wl, d, koff, x, dwl, stream); break;                \
    default: dxdw_blocks(NB, 4, K, O, gl, wl, d, koff, x, dwl, stream); break;             \
    }

/* Both gradients of one position for B in 1..4 and O in 8, 16, 24, 32. */
static void dxdw(long B, long K, long O, const float *gl, const float *wl, float *d,
                 const long *koff, const float *x, float *dwl, int stream)
{
    switch (B) {
    case 1: DXDW_NV(1) break;
    case 2: DXDW_NV(2) break;
    case 3: DXDW_NV(3) break;
    default: DXDW_NV(4) break;
    }
}
#endif

/* Lanes per batch entry for dx_bcast at batch B (1..8): G = VL / NB, NB = B rounded up
 * to a power of two. */
static int bcast_group_size(long B)
{
    return B == 1 ? VL : B == 2 ? VL / 2 : B <= 4 ? VL / 4 : VL / 8;
}

/* dx_bcast_g for B in 1..8 with O a multiple of bcast_group_size(B); dyq: VL*O floats. */
static void dx_bcast(long B, long K, long O, const float *gl, const float *wl,
                     const float *next, float *d, const long *koff, float *dyq,
                     const float *x, float *dwl, int stream)
{
    switch (VL / bcast_group_size(B)) { /* NB */
    case 1: dx_bcast_g(VL, 1, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream); break;
    case 2: dx_bcast_g(VL / 2, 2, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream); break;
    case 4:
        if (B == 4) dx_bcast_g(VL / 4, 4, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream);
        else dx_bcast_g(VL / 4, B, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream);
        break;
    default:
        if (B == 8) dx_bcast_g(VL / 8, 8, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream);
        else dx_bcast_g(VL / 8, B, K, O, gl, wl, next, d, koff, dyq, x, dwl, stream);
    }
}
#endif

/* wt (O x K, row stride K) = w^T for w (K x O, row stride O). */
static void transpose(const float *w, long K, long O, float *wt)
{
    long k0 = 0;
#ifdef HAVE_SHUFFLES
    for (; k0 + VL <= K; k0 += VL) {
        long o0 = 0;
        for (; o0 + VL <= O; o0 += VL) transpose_block(w + k0 * O + o0, O, wt + o0 * K + k0, K);
        for (long k = k0; k < k0 + VL; k++)
            for (long o = o0; o < O; o++) wt[o * K + k] = w[k * O + o];
    }
#endif
    for (long k = k0; k < K; k++)
        for (long o = 0; o < O; o++) wt[o * K + k] = w[k * O + o];
}

/* The scratch buffers are carved from work[] on 64-byte lines, whatever work's own
 * alignment: where a caller's buffer sat off a line, the output-gradient rows that dxdw
 * loads a vector at a time straddled lines, and the backward pass ran slower in some
 * processes than in others. */
#define LINE_FLOATS 16
static inline long line_up(long floats)
{
    return (floats + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS;
}

static inline float *line_start(float *work)
{
    return work + ((64 - (uintptr_t)work % 64) % 64) / sizeof *work;
}

/* Work buffer floats needed by lc_forward / lc_backward (room to start on a line
 * included). */
long lc_work_floats(const long *gm)
{
    long B = gm[GM_B], O = gm[GM_O], K = gm[GM_C] * gm[GM_KH] * gm[GM_KW];
    return LINE_FLOATS + line_up(B * K) + line_up(K * O) + line_up(O * B) + line_up(PG * B * O)
           + line_up(VL * O);
}

/* dw[k, o0 : o0 + nv*VL] for every k (nv = 1 or 2 constant). */
static inline __attribute__((always_inline)) void
dw_cols(const int nb, const int nv, long K, long O, long o0, const float *x, const long *koff,
        const float *gl, float *dw, int stream)
{
    vf g[2][8];
    for (int v = 0; v < nv; v++)
        for (int b = 0; b < nb; b++) g[v][b] = vload(gl + b * O + o0 + v * VL);
    for (long k = 0; k < K; k++) {
        const float *xk = x + koff[k];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            vf a = xk[0] * g[v][0];
#pragma GCC unroll 8
            for (int b = 1; b < nb; b++) a += xk[b] * g[v][b];
            vstore_to(dw + k * O + o0 + v * VL, a, stream);
        }
    }
}

/* dw[k, :] = sum_b x[koff[k] + b] * gl[b, :] for one position at small batch (nb <= 8
 * constant): the nb rows of the output gradient stay in registers, 32 columns at a time,
 * while the K rows of the weight gradient are written one after another, each from nb
 * broadcasts and 2*nb FMAs.  (Through the register-tiled gemm, each 8-row tile ran only B
 * k-steps between setting up its row pointers and storing its 16 accumulators, far below
 * the rate of deep tiles.)  No software prefetch: one line of the next position's
 * gradient per row was no faster. */
static inline __attribute__((always_inline)) void
dw_rows_nb(const int nb, long K, long O, const float *x, const long *koff, const float *gl,
           float *dw, int stream)
{
    long o0 = 0;
    for (; o0 + 2 * VL <= O; o0 += 2 * VL) dw_cols(nb, 2, K, O, o0, x, koff, gl, dw, stream);
    for (; o0 + VL <= O; o0 += VL) dw_cols(nb, 1, K, O, o0, x, koff, gl, dw, stream);
    for (; o0 < O; o0++)
        for (long k = 0; k < K; k++) {
            float a = 0.f;
            for (int b = 0; b < nb; b++) a += x[koff[k] + b] * gl[b * O + o0];
            dw[k * O + o0] = a;
        }
}

/* dw_rows_nb for B in 1..8. */
static void dw_rows(long B, long K, long O, const float *x, const long *koff, const float *gl,
                    float *dw, int stream)
{
    switch (B) {
    case 1: dw_rows_nb(1, K, O, x, koff, gl, dw, stream); break;
    case 2: dw_rows_nb(2, K, O, x, koff, gl, dw, stream); break;
    case 3: dw_rows_nb(3, K, O, x, koff, gl, dw, stream); break;
    case 4: dw_rows_nb(4, K, O, x, koff, gl, dw, stream); break;
    case 5: dw_rows_nb(5, K, O, x, koff, gl, dw, stream); break;
    case 6: dw_rows_nb(6, K, O, x, koff, gl, dw, stream); break;
    case 7: dw_rows_nb(7, K, O, x, koff, gl, dw, stream); break;
    default: dw_rows_nb(8, K, O, x, koff, gl, dw, stream); break;
    }
}

/* buf[i, m] = dy[m, lg + i] for the n <= PG positions from lg, m < B*O: the output gradient
 * of PG positions at a time, as (B x O) matrices; VL x VL blocks by register transposes. */
static void load_dy_group(const geom *g, const float *dy, long lg, long n, float *buf)
{
    long BO = g->B * g->O, L = g->L, m0 = 0;
#ifdef HAVE_SHUFFLES
    if (n == PG)
        for (; m0 + VL <= BO; m0 += VL)
            for (long i0 = 0; i0 < PG; i0 += VL)
                transpose_block(dy + m0 * L + lg + i0, L, buf + i0 * BO + m0, BO);
#endif
    for (long i = 0; i < n; i++)
        for (long m = m0; m < BO; m++) buf[i * BO + m] = dy[m * L + lg + i];
}

/* y[m, lg + i] = buf[i, m] + bias[m % O, lg + i]: the inverse of load_dy_group, plus bias. */
static void store_y_group(const geom *g, const float *buf, long lg, long n,
                          const float *bias, float *y)
{
    long BO = g->B * g->O, L = g->L, O = g->O, m0 = 0;
#ifdef HAVE_SHUFFLES
    if (n == PG)
        for (; m0 + VL <= BO; m0 += VL)
            for (long i0 = 0; i0 < PG; i0 += VL) {
                if (bias)
                    transpose_block_bias(buf + i0 * BO + m0, BO, y + m0 * L + lg + i0, L,
                                         bias + lg + i0, L, m0 % O, O);
                else
                    transpose_block(buf + i0 * BO + m0, BO, y + m0 * L + lg + i0, L);
            }
#endif
    for (long i = 0; i < n; i++)
        for (long m = m0; m < BO; m++)
            y[m * L + lg + i] = buf[i * BO + m] + (bias ? bias[(m % O) * L + lg + i] : 0.f);
}

#define GROUPS(l0, l1, lg, n) \
    for (long lg = (l0), n = (l1) - (l0) < PG ? (l1) - (l0) : PG; lg < (l1); \
         lg += PG, n = (l1) - lg < PG ? (l1) - lg : PG)

void lc_pack(const float *x, float *xt, const long *gm);
void lc_unpack(float *const *dxt, long n, float *dx, const long *gm);

/* y[b, o, l] = patch_l (B x K) @ w[l] (K x O) + bias[o, l] for l in [l0, l1), with xt the
 * padded batch-innermost input (Hp, Wp, C, B), y (B, O, Ho*Wo) and bias (O, Ho*Wo) or NULL.
 * x non-NULL: first pack x into xt (lc_pack; a single-threaded caller saves a call).
 * 0, or -1 when out of memory. */
int lc_forward(const float *x, float *xt, const float *w, const float *bias, float *y,
               float *work, long l0, long l1, const long *gm)
{
    geom g = geom_of(gm);
    long K = g.C * g.kh * g.kw, B = g.B, O = g.O, BO = B * O, *off = patch_offsets(&g);
    if (!off) return -1;
    if (x) lc_pack(x, xt, gm);
    float *out = line_start(work); /* PG x (B x O) */
    GROUPS(l0, l1, lg, n) {
        for (long l = lg; l < lg + n; l++) {
            const float *next = l + 1 < l1 ? w + (l + 1) * K * O : NULL;
            amat patch = {xt + corner(&g, l), 0, 0, off + K, off}; /* rows b, columns k */
            gemm(B, O, K, patch, w + l * K * O, O, out + (l - lg) * BO, O, next, 4 * K * O, 0);
        }
        store_y_group(&g, out, lg, n, bias, y);
    }
    free(off);
    return 0;
}

/* What a backward call's positions share: the geometry, operands, patch offsets, where dW
 * goes and whether it streams, and the scratch buffers carved from work[]. */
typedef struct {
    const geom *g;
    const float *xt, *w, *dy;
    float *dw, *dxt;
    const long *off;
    float *e, *wt, *gt, *gbuf, *dyq;
    long l1;
    int stream;
    /* Both gradients in one sweep at batch <= 4 with dW streamed: each position's dW rows
     * are written block by block between its input gradient's (dx_bcast, dx_quads; dxdw
     * row by row), so the streamed stores drain while the input gradient reads w[l] and
     * computes; position by position (all of dW[l], then all of its input gradient) the two
     * took as long as each alone added up.  Each block's dW rows go out after its FMAs and
     * before its reductions.  Not at B = 8, where the input gradient's arithmetic, not the
     * stores, sets the pace (compute-bound: plain and streamed stores took as long). */
    int fuse;
} bwd;

/* dw[l] = patch_l^T @ gl, gl position l's (B x O) output gradient. */
static void dw_at(const bwd *c, long l, const float *gl)
{
    const geom *g = c->g;
    long B = g->B, O = g->O, K = g->C * g->kh * g->kw;
    if (B <= 8) { /* small batch: row by row, the output gradient in registers */
        dw_rows(B, K, O, c->xt + corner(g, l), c->off, gl, c->dw + l * K * O, c->stream);
        return;
    }
    float *next = l + 1 < c->l1 ? c->dw + (l + 1) * K * O : NULL;
    amat patch_t = {c->xt + corner(g, l), 0, 0, c->off, c->off + K}; /* rows k, cols b */
    gemm(K, O, B, patch_t, gl, O, c->dw + l * K * O, O, next, 4 * K * O, c->stream);
}

/* Whether dx_at takes dx_pairs at batch B (which writes no weight gradient: see bwd.fuse). */
static inline int dx_takes_pairs(long B, long O)
{
#if defined(HAVE_SHUFFLES) && defined(__AVX512F__)
    return (B == 4 && O % 8 == 0) || (B == 8 && O % 4 == 0);
#else
    (void)B, (void)O;
    return 0;
#endif
}

/* dxt += scatter(gl @ w[l]^T): position l's share of the padded input gradient. */
static void dx_at(const bwd *c, long l, const float *gl)
{
    const geom *g = c->g;
    long B = g->B, O = g->O, K = g->C * g->kh * g->kw;
    const float *wl = c->w + l * K * O, *next = l + 1 < c->l1 ? wl + K * O : NULL;
    if (B % VL == 0 && B > 8) {
        /* batch a multiple of the vector width: e^T (K x B) = w[l] @ dy_l^T, the vectors
         * run along the batch, w[l] is read in place (not transposed), and the result adds
         * into dxt with vector adds (not at B = 8 with AVX2, where broadcasts are faster) */
        transpose(gl, B, O, c->gt);
        gemm(K, B, O, strided(wl, O, 1), c->gt, B, c->e, B, next, 4 * K * O, 0);
        scatter_add_t(g, c->dxt, l, c->off, c->e);
        return;
    }
#ifdef HAVE_SHUFFLES
#if defined(__AVX512F__)
    if (dx_takes_pairs(B, O)) {
        dx_pairs(B, K, O, gl, wl, next, c->dxt + corner(g, l), c->off, c->dyq);
        return;
    }
#endif
#ifdef AVX2_PATHS
    if (c->fuse && O % 8 == 0 && O <= 32) { /* fuse: B <= 4 */
        dxdw(B, K, O, gl, wl, c->dxt + corner(g, l), c->off, c->xt + corner(g, l),
             c->dw + l * K * O, c->stream);
        return;
    }
    if (B == 4 && O % 8 == 0 && O >= 64) {
        dx_quads(K, O, gl, wl, next, c->dxt + corner(g, l), c->off, c->dyq,
                 c->xt + corner(g, l), c->fuse ? c->dw + l * K * O : NULL, c->stream);
        return;
    }
#endif
    if (B <= 8 && O % bcast_group_size(B) == 0) {
        dx_bcast(B, K, O, gl, wl, next, c->dxt + corner(g, l), c->off, c->dyq,
                 c->xt + corner(g, l), c->fuse ? c->dw + l * K * O : NULL, c->stream);
        return;
    }
#endif
    transpose(wl, K, O, c->wt);
    gemm(B, K, O, strided(gl, O, 1), c->wt, K, c->e, K, next, 4 * K * O, 0);
    scatter_add(g, c->dxt, l, c->off, c->e);
}

/* One sweep over positions [l0, c->l1): the weight gradient, the input gradient or both,
 * position by position, the output gradient moved into batch-major groups of PG positions
 * on the way. */
static void bwd_sweep(const bwd *c, long l0, int do_dw, int do_dx)
{
    long BO = c->g->B * c->g->O;
    GROUPS(l0, c->l1, lg, n) {
        load_dy_group(c->g, c->dy, lg, n, c->gbuf);
        for (long l = lg; l < lg + n; l++) {
            if (do_dw && !c->fuse) dw_at(c, l, c->gbuf + (l - lg) * BO);
            if (do_dx) dx_at(c, l, c->gbuf + (l - lg) * BO); /* with dW where c->fuse */
        }
    }
#if defined(__AVX__)
    if (do_dw && c->stream) _mm_sfence(); /* streamed stores visible before we return */
#endif
}

/* For l in [l0, l1), with dy (B, O, Ho*Wo) the output gradient: dw[l] = patch_l^T @ dy_l
 * (if want_dw), dxt = scatter(dy_l @ w[l]^T) summed over these positions (if want_dx; dxt,
 * laid out like xt, is zeroed here and must be private to the caller's thread) and
 * db[o, l] = sum_b dy[b, o, l] (db NULL: not wanted); dx non-NULL: then unpack dxt into dx
 * (lc_unpack; a single-threaded caller saves a call).  0, or -1 when out of memory. */
int lc_backward(const float *xt, const float *w, const float *dy, float *dw, float *dxt,
                float *db, float *dx, float *work, long l0, long l1, const long *gm,
                int want_dw, int want_dx)
{
    geom g = geom_of(gm);
    long B = g.B, O = g.O, K = g.C * g.kh * g.kw, L = g.L;
    long *off = patch_offsets(&g);
    if (!off) return -1;
    if (want_dx) memset(dxt, 0, (size_t)(g.Hp * g.Wp * g.C * B) * sizeof *dxt);
    if (db) {
        for (long o = 0; o < O; o++)
            for (long l = l0; l < l1; l++) db[o * L + l] = 0.f;
        for (long b = 0; b < B; b++)
            for (long o = 0; o < O; o++)
                for (long l = l0; l < l1; l++) db[o * L + l] += dy[(b * O + o) * L + l];
    }
    bwd c = {&g, xt, w, dy, dw, dxt, off, line_start(work), NULL, NULL, NULL, NULL, l1, 0, 0};
    c.wt = c.e + line_up(B * K);
    c.gt = c.wt + line_up(K * O);
    c.gbuf = c.gt + line_up(O * B);
#ifdef HAVE_SHUFFLES
    c.dyq = c.gbuf + line_up(PG * B * O);
#endif
    /* stream dW when it is large and every tile store is vector-aligned (O % VL == 0);
     * the columns of a tile's tail (O % VL) are written by plain stores anyway */
    c.stream = L * K * O * (long)sizeof(float) >= DW_STREAM_MIN_BYTES && O % VL == 0
               && ((unsigned long)dw & 63) == 0;
    /* Where dW streams, one sweep computes both gradients position by position: its
     * stores then go out while w[l] comes in for the input gradient.  Otherwise two sweeps:
     * interleaved per position, the working sets evict each other. */
    if (want_dw && want_dx && c.stream) {
#ifdef HAVE_SHUFFLES
        /* O % VL == 0 here, so dx_at takes dxdw, dx_bcast, dx_quads or dx_pairs */
        c.fuse = B <= 4 && !dx_takes_pairs(B, O);
#endif
        bwd_sweep(&c, l0, 1, 1);
    } else {
        if (want_dw) bwd_sweep(&c, l0, 1, 0);
        if (want_dx) bwd_sweep(&c, l0, 0, 1);
    }
    free(off);
    if (want_dx && dx) lc_unpack(&dxt, 1, dx, gm);
    return 0;
}

#ifdef HAVE_SHUFFLES
/* Packing at batch 1, 2, 4 or 8 (B <= VL; VL / B channels dividing C): the VL rows
 * x[b, c + i, h, v0 .. v0 + VL - 1] (i < VL / B, every b) are transposed in registers, and
 * each column is then one vector-wide run of xt (VL / B channels by B batch entries),
 * written in one store; element by element, each run took B-float pieces at VL / B
 * different times.
 *
 * run_rows: ro[i] = where row i of such a block starts in x (batch entry i % B, channel
 * i / B). */
static void run_rows(long B, long CHW, long HW, long ro[VL])
{
    for (long i = 0; i < VL; i++) ro[i] = (i % B) * CHW + (i / B) * HW;
}

/* xt's VL runs (h, v0 .. v0 + VL - 1, c .. c + VL / B - 1, all b) from x (d: the first). */
static void pack_runs(const float *x, const long ro[VL], float *d, long CB)
{
    vf r[VL];
    for (int i = 0; i < VL; i++) r[i] = vload(x + ro[i]);
    transpose_regs(r);
    for (int v = 0; v < VL; v++) vstore(d + v * CB, r[v]);
}

/* pack_runs' inverse: the VL runs at d back into x. */
static void unpack_runs(const float *d, long CB, float *x, const long ro[VL])
{
    vf r[VL];
    for (int v = 0; v < VL; v++) r[v] = vload(d + v * CB);
    transpose_regs(r);
    for (int i = 0; i < VL; i++) vstore(x + ro[i], r[i]);
}

/* Whether pack_runs and unpack_runs serve this batch and channel count. */
static int runs_apply(long B, long C)
{
    return (B == 1 || B == 2 || B == 4 || B == 8) && C % (VL / B) == 0; /* VL >= 8 here */
}

/* x (B, C, H, W) into the interior of xt (Hp, Wp, C, B) (pack) or back out of it (unpack)
 * where runs_apply: VL columns at a time through pack_runs / unpack_runs, the columns past
 * the last multiple of VL element by element. */
static void copy_runs(int pack, float *x, float *xt, long B, long C, long H, long W, long ph,
                      long pw)
{
    long Wp = W + 2 * pw, CB = C * B, v0 = W - W % VL, ro[VL];
    run_rows(B, C * H * W, H * W, ro);
    for (long h = 0; h < H; h++)
        for (long c = 0; c < C; c += VL / B) {
            float *xr = x + (c * H + h) * W, *tr = xt + ((h + ph) * Wp + pw) * CB + c * B;
            for (long v = 0; v < v0; v += VL) {
                if (pack) pack_runs(xr + v, ro, tr + v * CB, CB);
                else unpack_runs(tr + v * CB, CB, xr + v, ro);
            }
        }
    for (long c = 0; c < C; c++)
        for (long h = 0; h < H; h++)
            for (long b = 0; b < B; b++)
                for (long v = v0; v < W; v++) {
                    float *a = x + ((b * C + c) * H + h) * W + v,
                          *t = xt + ((h + ph) * Wp + pw + v) * CB + c * B + b;
                    if (pack) *t = *a;
                    else *a = *t;
                }
}
#endif

/* xt (H + 2ph, W + 2pw, C, B) = x (B, C, H, W), zero-padded and batch-innermost.  VL x VL
 * blocks go through transpose_block: VL batch entries by VL columns, or at batch 1, 2, 4
 * and 8 VL / B channels by B entries by VL columns (pack_runs); the rest element by
 * element, which was several times slower. */
void lc_pack(const float *x, float *xt, const long *gm)
{
    long B = gm[GM_B], C = gm[GM_C], H = gm[GM_H], W = gm[GM_W], ph = gm[GM_PH],
         pw = gm[GM_PW];
    long Wp = W + 2 * pw, Hp = H + 2 * ph, CB = C * B;
    for (long h = 0; h < Hp; h++)
        for (long v = 0; v < Wp; v++)
            if (h < ph || h >= ph + H || v < pw || v >= pw + W)
                memset(xt + (h * Wp + v) * CB, 0, (size_t)CB * sizeof *xt);
#ifdef HAVE_SHUFFLES
    if (runs_apply(B, C)) {
        copy_runs(1, (float *)x, xt, B, C, H, W, ph, pw);
        return;
    }
#endif
    for (long c = 0; c < C; c++)
        for (long h = 0; h < H; h++) {
            float *d = xt + ((h + ph) * Wp + pw) * CB + c * B; /* (v, b) at v*CB + b */
            long b0 = 0;
#ifdef HAVE_SHUFFLES
            for (; b0 + VL <= B; b0 += VL) {
                long v0 = 0;
                for (; v0 + VL <= W; v0 += VL)
                    transpose_block(x + ((b0 * C + c) * H + h) * W + v0, C * H * W,
                                    d + v0 * CB + b0, CB);
                for (long b = b0; b < b0 + VL; b++)
                    for (long v = v0; v < W; v++) d[v * CB + b] = x[((b * C + c) * H + h) * W + v];
            }
#endif
            for (long b = b0; b < B; b++)
                for (long v = 0; v < W; v++) d[v * CB + b] = x[((b * C + c) * H + h) * W + v];
        }
}

/* dx (B, C, H, W) = the sum of the n padded batch-innermost gradients dxt[0..n-1] (one per
 * thread; the first is summed into in place); blocks as in lc_pack. */
void lc_unpack(float *const *dxt, long n, float *dx, const long *gm)
{
    long B = gm[GM_B], C = gm[GM_C], H = gm[GM_H], W = gm[GM_W], ph = gm[GM_PH],
         pw = gm[GM_PW];
    long Wp = W + 2 * pw, CB = C * B, total = (H + 2 * ph) * Wp * CB;
    for (long t = 1; t < n; t++)
        for (long m = 0; m < total; m++) dxt[0][m] += dxt[t][m];
#ifdef HAVE_SHUFFLES
    if (runs_apply(B, C)) {
        copy_runs(0, dx, dxt[0], B, C, H, W, ph, pw);
        return;
    }
#endif
    for (long c = 0; c < C; c++)
        for (long h = 0; h < H; h++) {
            const float *s = dxt[0] + ((h + ph) * Wp + pw) * CB + c * B;
            long b0 = 0;
#ifdef HAVE_SHUFFLES
            for (; b0 + VL <= B; b0 += VL) {
                long v0 = 0;
                for (; v0 + VL <= W; v0 += VL)
                    transpose_block(s + v0 * CB + b0, CB, dx + ((b0 * C + c) * H + h) * W + v0,
                                    C * H * W);
                for (long b = b0; b < b0 + VL; b++)
                    for (long v = v0; v < W; v++) dx[((b * C + c) * H + h) * W + v] = s[v * CB + b];
            }
#endif
            for (long b = b0; b < B; b++)
                for (long v = 0; v < W; v++) dx[((b * C + c) * H + h) * W + v] = s[v * CB + b];
        }
}
