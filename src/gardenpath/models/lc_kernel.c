/* Fused CPU kernels for LocallyConnected2d (float32): gather one position's patches into a
 * small buffer that stays in L1, multiply it with that position's filter, and (backward)
 * scatter the input gradient straight back.  No unfolded (L, B, C*kh*kw) tensor is ever
 * materialised, and the small matrix products use a register-tiled micro-kernel written
 * with GCC/Clang vector extensions (compiled with -march=native: AVX-512, AVX2 or NEON).
 *
 * Why: ATen's CPU bmm reaches about half of this machine's peak on the B x (C*kh*kw) x O
 * products of a locally connected layer at small batch (benchmarks/results/local.md), and
 * the unfold / fold around it adds copies and memory.  Built and loaded by
 * gardenpath.models.lc_native; every tensor is contiguous row-major float32.
 *
 * Layouts: xp (B, C, Hp, Wp) is the zero-padded input; w (L, K, O) with K = C*kh*kw
 * ordered (c, i, j) as in F.unfold; out and g (L, B, O); dw (L, K, O); dxp like xp.
 * Each call handles positions [l0, l1), so callers can split positions across threads.
 */
#include <stddef.h>
#include <string.h>

#define VL 16 /* floats per vector */
#define MR 8  /* rows per register tile */
#ifndef DX_DOT_MAX_B
#define DX_DOT_MAX_B 2 /* batch up to which dx uses dot products (dx_dot): measured
                         * 1.9x faster than transpose + gemm at B = 1, 1.07x at 2, slower at 4 */
#endif
typedef float vf __attribute__((vector_size(VL * sizeof(float))));

static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* Software prefetch of the next position's operand, interleaved with the arithmetic of
 * this one: one or two 64-byte lines per k step (pf.step bytes; no prefetch when NULL).
 * A single core streams 100+ MB of unshared weights far faster this way (measured). */
typedef struct {
    const char *p;
    long step;
    int write;
} prefetch;

static inline __attribute__((always_inline)) void pf_at(const prefetch *pf, long k)
{
    if (!pf->p) return;
    const char *q = pf->p + k * pf->step;
    if (pf->write) {
        __builtin_prefetch(q, 1, 2);
        if (pf->step > 64) __builtin_prefetch(q + 64, 1, 2);
    } else {
        __builtin_prefetch(q, 0, 2);
        if (pf->step > 64) __builtin_prefetch(q + 64, 0, 2);
    }
}

/* c[r, 0:NV*VL] = sum_k a[r*ars + k*aks] * w[k*ldw + 0:NV*VL] for r < mr (mr, NV constant
 * after inlining: the accumulators live in registers). */
static inline __attribute__((always_inline)) void
tile(const int mr, const int nv, long K, const float *a, long ars, long aks,
     const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    vf acc[MR][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = (vf){0}; acc[r][1] = (vf){0}; }
    for (long k = 0; k < K; k++) {
        const float *wk = w + k * ldw;
        vf w0 = vload(wk);
        vf w1 = nv > 1 ? vload(wk + VL) : (vf){0};
        pf_at(pf, k);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            float s = a[r * ars + k * aks];
            acc[r][0] += s * w0;
            if (nv > 1) acc[r][1] += s * w1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        vstore(c + r * ldc, acc[r][0]);
        if (nv > 1) vstore(c + r * ldc + VL, acc[r][1]);
    }
}

#define TILE_CASES(NV, ARS, AKS)                                                       \
    switch (mr) {                                                                      \
    case 8: tile(8, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 7: tile(7, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 6: tile(6, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 5: tile(5, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 4: tile(4, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 3: tile(3, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    case 2: tile(2, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                        \
    default: tile(1, NV, K, a, ARS, AKS, w, ldw, c, ldc, pf); break;                       \
    }

/* One of A's two strides is 1 in every call (A or A^T is row-major): making it a
 * compile-time 1 lets the compiler walk A with pointer increments (2x faster here). */
static void tile_n(int nv, int mr, long K, const float *a, long ars, long aks,
                   const float *w, long ldw, float *c, long ldc, const prefetch *pf)
{
    if (aks == 1) {
        if (nv == 2) { TILE_CASES(2, ars, 1) } else { TILE_CASES(1, ars, 1) }
    } else if (ars == 1) {
        if (nv == 2) { TILE_CASES(2, 1, aks) } else { TILE_CASES(1, 1, aks) }
    } else {
        if (nv == 2) { TILE_CASES(2, ars, aks) } else { TILE_CASES(1, ars, aks) }
    }
}

/* C (M x N, row stride ldc) = A (M x K; element (m, k) at a[m*ars + k*aks]) @ W (K x N,
 * row stride ldw).  Full vectors through the micro-kernel, the last N % VL columns scalar.
 * Meanwhile the pf_bytes at pf_next are prefetched (pf_next NULL: none). */
static void gemm(long M, long N, long K, const float *a, long ars, long aks,
                 const float *w, long ldw, float *c, long ldc,
                 const void *pf_next, long pf_bytes, int pf_write)
{
    long tiles = ((N / (2 * VL)) + (N % (2 * VL) >= VL)) * ((M + MR - 1) / MR);
    long steps = tiles * K, lines = (pf_bytes + 63) / 64;
    prefetch pf = {(const char *)pf_next, lines > steps ? 128 : 64, pf_write};
    if (steps == 0) pf.p = NULL;
    long n = 0;
    for (; n + 2 * VL <= N; n += 2 * VL)
        for (long m = 0; m < M; m += MR) {
            tile_n(2, (int)(M - m < MR ? M - m : MR), K, a + m * ars, ars, aks, w + n, ldw,
                   c + m * ldc + n, ldc, &pf);
            if (pf.p) pf.p += K * pf.step;
        }
    for (; n + VL <= N; n += VL)
        for (long m = 0; m < M; m += MR) {
            tile_n(1, (int)(M - m < MR ? M - m : MR), K, a + m * ars, ars, aks, w + n, ldw,
                   c + m * ldc + n, ldc, &pf);
            if (pf.p) pf.p += K * pf.step;
        }
    for (; n < N; n++)
        for (long m = 0; m < M; m++) {
            float s = 0.f;
            for (long k = 0; k < K; k++) s += a[m * ars + k * aks] * w[k * ldw + n];
            c[m * ldc + n] = s;
        }
}

typedef struct {
    long B, C, Hp, Wp, kh, kw, sh, sw, Wo, O;
} geom;

/* patch (B x K) of output position l: patch[b, (c, i, j)] = xp[b, c, oh*sh + i, ow*sw + j].
 * kh, kw are compile-time constants for the common sizes (see the dispatch below): the
 * inner copy loops then unroll, which makes gather and scatter 3-4x faster here. */
static inline __attribute__((always_inline)) void
gather_k(const geom *g, const float *xp, long l, float *patch, const long kh, const long kw)
{
    long oh = l / g->Wo, ow = l % g->Wo, K = g->C * kh * kw, Wp = g->Wp;
    for (long b = 0; b < g->B; b++)
        for (long c = 0; c < g->C; c++) {
            const float *src = xp + ((b * g->C + c) * g->Hp + oh * g->sh) * Wp + ow * g->sw;
            float *dst = patch + b * K + c * kh * kw;
            for (long i = 0; i < kh; i++)
                for (long j = 0; j < kw; j++) dst[i * kw + j] = src[i * Wp + j];
        }
}

/* dxp[b, c, oh*sh + i, ow*sw + j] += e[b, (c, i, j)] */
static inline __attribute__((always_inline)) void
scatter_add_k(const geom *g, float *dxp, long l, const float *e, const long kh, const long kw)
{
    long oh = l / g->Wo, ow = l % g->Wo, K = g->C * kh * kw, Wp = g->Wp;
    for (long b = 0; b < g->B; b++)
        for (long c = 0; c < g->C; c++) {
            float *dst = dxp + ((b * g->C + c) * g->Hp + oh * g->sh) * Wp + ow * g->sw;
            const float *src = e + b * K + c * kh * kw;
            for (long i = 0; i < kh; i++)
                for (long j = 0; j < kw; j++) dst[i * Wp + j] += src[i * kw + j];
        }
}

/* the same from e^T (K x B): dxp[b, c, oh*sh + i, ow*sw + j] += et[(c, i, j) * B + b] */
static inline __attribute__((always_inline)) void
scatter_add_t_k(const geom *g, float *dxp, long l, const float *et, const long kh,
                const long kw)
{
    long oh = l / g->Wo, ow = l % g->Wo, B = g->B, Wp = g->Wp;
    for (long b = 0; b < B; b++)
        for (long c = 0; c < g->C; c++) {
            float *dst = dxp + ((b * g->C + c) * g->Hp + oh * g->sh) * Wp + ow * g->sw;
            const float *src = et + c * kh * kw * B + b;
            for (long i = 0; i < kh; i++)
                for (long j = 0; j < kw; j++) dst[i * Wp + j] += src[(i * kw + j) * B];
        }
}

#define KERNEL_SIZE_DISPATCH(F, ...)                                                   \
    if (g->kh == 3 && g->kw == 3) F(__VA_ARGS__, 3, 3);                                \
    else if (g->kh == 5 && g->kw == 5) F(__VA_ARGS__, 5, 5);                           \
    else if (g->kh == 1 && g->kw == 1) F(__VA_ARGS__, 1, 1);                           \
    else if (g->kh == 7 && g->kw == 7) F(__VA_ARGS__, 7, 7);                           \
    else F(__VA_ARGS__, g->kh, g->kw);

static void gather(const geom *g, const float *xp, long l, float *patch)
{
    KERNEL_SIZE_DISPATCH(gather_k, g, xp, l, patch)
}

static void scatter_add(const geom *g, float *dxp, long l, const float *e)
{
    KERNEL_SIZE_DISPATCH(scatter_add_k, g, dxp, l, e)
}

static void scatter_add_t(const geom *g, float *dxp, long l, const float *et)
{
    KERNEL_SIZE_DISPATCH(scatter_add_t_k, g, dxp, l, et)
}

/* wt (O x K, row stride K) = w^T for w (K x O, row stride O). */
#if defined(__GNUC__) && !defined(__clang__) && VL == 16
typedef int vi __attribute__((vector_size(VL * sizeof(int))));
/* 16 x 16 block in registers: four stages of two-source shuffles (vpermt2ps on AVX-512);
 * stage S swaps the off-diagonal S x S sub-blocks of every 2S x 2S block. */
static void transpose16(const float *src, long lds, float *dst, long ldd)
{
    vf r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = vload(src + i * lds);
#define STAGE(S, LO, HI)                                                               \
    for (int i = 0; i < 16; i++)                                                       \
        if (!(i & (S))) {                                                              \
            t[i] = __builtin_shuffle(r[i], r[i + (S)], LO);                            \
            t[i + (S)] = __builtin_shuffle(r[i], r[i + (S)], HI);                      \
        }                                                                              \
    for (int i = 0; i < 16; i++) r[i] = t[i];
        STAGE(8, ((vi){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}), ((vi){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}));
        STAGE(4, ((vi){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}), ((vi){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}));
        STAGE(2, ((vi){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}), ((vi){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}));
        STAGE(1, ((vi){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}), ((vi){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}));
#undef STAGE
    for (int i = 0; i < 16; i++) vstore(dst + i * ldd, r[i]);
}
#define HAVE_TRANSPOSE16 1
#endif

#ifdef HAVE_TRANSPOSE16
/* Lane r of the result is the sum of the 16 lanes of p[r]: the transpose stages above, with
 * the two halves added after each stage (the later stages are linear and act on the halves
 * alike), 30 shuffles and 15 adds for 16 dot products. p is overwritten. */
static inline vf reduce16(vf *p)
{
    for (int i = 0; i < 8; i++)
        p[i] = __builtin_shuffle(p[i], p[i + 8], ((vi){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}))
             + __builtin_shuffle(p[i], p[i + 8], ((vi){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}));
    for (int i = 0; i < 4; i++)
        p[i] = __builtin_shuffle(p[i], p[i + 4], ((vi){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}))
             + __builtin_shuffle(p[i], p[i + 4], ((vi){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}));
    for (int i = 0; i < 2; i++)
        p[i] = __builtin_shuffle(p[i], p[i + 2], ((vi){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}))
             + __builtin_shuffle(p[i], p[i + 2], ((vi){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}));
    for (int i = 0; i < 1; i++)
        p[i] = __builtin_shuffle(p[i], p[i + 1], ((vi){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}))
             + __builtin_shuffle(p[i], p[i + 1], ((vi){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}));
    return p[0];
}

/* e[b, k] = sum_o gy[b, o] * w[k, o] for small B with O a multiple of VL: w is read once,
 * row by row (16 rows per step, one dot product per row and batch element), instead of
 * being transposed first. */
static void dx_dot(long B, long K, long O, const float *gl, const float *wl, float *e)
{
    for (long k0 = 0; k0 < K; k0 += 16) {
        long kb = K - k0 < 16 ? K - k0 : 16;
        for (long b = 0; b < B; b++) {
            vf p[16];
            const float *gb = gl + b * O;
            for (long r = 0; r < 16; r++) {
                vf acc = (vf){0};
                if (r < kb)
                    for (long o = 0; o < O; o += VL)
                        acc += vload(gb + o) * vload(wl + (k0 + r) * O + o);
                p[r] = acc;
            }
            vf sum = reduce16(p);
            if (kb == 16) vstore(e + b * K + k0, sum);
            else {
                float tmp[VL];
                vstore(tmp, sum);
                for (long r = 0; r < kb; r++) e[b * K + k0 + r] = tmp[r];
            }
        }
    }
}
#endif

static void transpose(const float *w, long K, long O, float *wt)
{
    long k0 = 0, o0;
#ifdef HAVE_TRANSPOSE16
    for (; k0 + 16 <= K; k0 += 16) {
        for (o0 = 0; o0 + 16 <= O; o0 += 16) transpose16(w + k0 * O + o0, O, wt + o0 * K + k0, K);
        for (long k = k0; k < k0 + 16; k++)
            for (long o = o0; o < O; o++) wt[o * K + k] = w[k * O + o];
    }
#endif
    for (long k = k0; k < K; k++)
        for (long o = 0; o < O; o++) wt[o * K + k] = w[k * O + o];
}

/* Work buffer floats needed by lc_forward / lc_backward. */
long lc_work_floats(long B, long C, long kh, long kw, long O)
{
    long K = C * kh * kw;
    return 2 * B * K + K * O + O * B;
}

/* out[l] (B x O) = patch_l (B x K) @ w[l] (K x O) for l in [l0, l1). */
void lc_forward(const float *xp, const float *w, float *out, float *work, long l0, long l1,
                long B, long C, long Hp, long Wp, long kh, long kw, long sh, long sw,
                long Wo, long O)
{
    geom g = {B, C, Hp, Wp, kh, kw, sh, sw, Wo, O};
    long K = C * kh * kw;
    for (long l = l0; l < l1; l++) {
        const float *next = l + 1 < l1 ? w + (l + 1) * K * O : NULL;
        gather(&g, xp, l, work);
        gemm(B, O, K, work, K, 1, w + l * K * O, O, out + l * B * O, O, next, 4 * K * O, 0);
    }
}

/* For l in [l0, l1): dw[l] = patch_l^T @ gy[l] (if want_dw) and
 * dxp += scatter(gy[l] @ w[l]^T) (if want_dx; dxp must be private to the caller's thread). */
void lc_backward(const float *xp, const float *w, const float *gy, float *dw, float *dxp,
                 float *work, long l0, long l1, long B, long C, long Hp, long Wp, long kh,
                 long kw, long sh, long sw, long Wo, long O, int want_dw, int want_dx)
{
    geom g = {B, C, Hp, Wp, kh, kw, sh, sw, Wo, O};
    long K = C * kh * kw;
    float *patch = work, *e = work + B * K, *wt = work + 2 * B * K, *gt = wt + K * O;
    /* two passes over the positions: interleaving them per position measured slower
     * (3.1 vs 2.5 ms at 16x16, C=O=32, B=16), the working sets evict each other */
    if (want_dw)
        for (long l = l0; l < l1; l++) {
            gather(&g, xp, l, patch);
            /* rows of dW are k: element (k, b) of patch^T is patch[b*K + k] */
            float *next = l + 1 < l1 ? dw + (l + 1) * K * O : NULL;
            gemm(K, O, B, patch, 1, K, gy + l * B * O, O, dw + l * K * O, O, next, 4 * K * O, 1);
        }
    if (want_dx && B % VL == 0)
        /* batch a multiple of the vector width: e^T (K x B) = w[l] (K x O) @ gy[l]^T, the
         * vectors run along the batch and w[l] is read in place (no transpose of it) */
        for (long l = l0; l < l1; l++) {
            transpose(gy + l * B * O, B, O, gt);
            const float *next = l + 1 < l1 ? w + (l + 1) * K * O : NULL;
            gemm(K, B, O, w + l * K * O, O, 1, gt, B, e, B, next, 4 * K * O, 0);
            scatter_add_t(&g, dxp, l, e);
        }
#ifdef HAVE_TRANSPOSE16
    else if (want_dx && B <= DX_DOT_MAX_B && O % VL == 0)
        for (long l = l0; l < l1; l++) {
            if (l + 1 < l1) /* the next filter, while this one's dot products run */
                for (long q = 0; q < 4 * K * O; q += 64 * 16)
                    __builtin_prefetch((const char *)(w + (l + 1) * K * O) + q, 0, 2);
            dx_dot(B, K, O, gy + l * B * O, w + l * K * O, e);
            scatter_add(&g, dxp, l, e);
        }
#endif
    else if (want_dx)
        for (long l = l0; l < l1; l++) {
            transpose(w + l * K * O, K, O, wt);
            const float *next = l + 1 < l1 ? w + (l + 1) * K * O : NULL;
            gemm(B, K, O, gy + l * B * O, O, 1, wt, K, e, K, next, 4 * K * O, 0);
            scatter_add(&g, dxp, l, e);
        }
}
