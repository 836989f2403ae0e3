// The locally connected layer's forward and backward as a torch operator with a C++ autograd
// function, calling the fused kernel of lc_kernel.c (linked into the same library).
//
// Why: at small shapes the Python around the kernel (an autograd.Function's forward and
// backward, ctypes argument conversion, the tensors it allocates) took as long as a pass of
// the kernel itself; here the autograd engine calls backward without entering Python.
// Built and loaded by gardenpath.models.lc_op; lc_native.LocalFn is the same computation in
// Python, used where this library does not build.
//
// gardenpath::locally_connected(x, weight, bias, dw_buffer, geometry): x (B, C, H, W) and
// weight (L, C*kh*kw, O) contiguous float32 on the CPU, bias (O, Ho, Wo) or None, dw_buffer
// a tensor shaped like weight that backward may write the weight gradient into (or None:
// then it allocates one), geometry = (B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O): the
// array every entry point of lc_kernel.c takes (lc_native.geometry builds it).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <vector>

extern "C" {
long lc_work_floats(const long *gm);
int lc_forward(const float *x, float *xt, const float *w, const float *bias, float *y,
               float *work, long l0, long l1, const long *gm);
int lc_backward(const float *xt, const float *w, const float *dy, float *dw, float *dxt,
                float *db, float *dx, float *work, long l0, long l1, const long *gm,
                int want_dw, int want_dx);
void lc_pack(const float *x, float *xt, const long *gm);
void lc_unpack(float *const *dxt, long n, float *dx, const long *gm);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the kernel needs besides its tensors: the geometry array gm = {B, C, H, W, ph, pw,
// kh, kw, sh, sw, Ho, Wo, O}, each thread's position range (at least 8 positions each, as
// lc_native.plan splits them) and the scratch floats per thread.
struct Plan {
    std::array<long, 13> gm;
    std::vector<std::array<long, 2>> parts;
    long work_floats;
};

Plan make_plan(const std::vector<int64_t> &g) {
    TORCH_CHECK(g.size() == 13, "geometry is (B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O)");
    Plan p;
    std::copy(g.begin(), g.end(), p.gm.begin());
    long n = g[10] * g[11];
    long count = std::max<long>(1, std::min<long>(at::get_num_threads(), n / 8));
    for (long i = 0; i < count; i++) p.parts.push_back({n * i / count, n * (i + 1) / count});
    p.work_floats = lc_work_floats(p.gm.data());
    return p;
}

// Calls f(part) for every part, on torch's intra-op threads when there is more than one.
template <class F>
void run_parts(size_t n, const F &f) {
    std::atomic<int> failed{0};
    if (n == 1) {
        failed = f(0);
    } else {
        at::parallel_for(0, static_cast<int64_t>(n), 1, [&](int64_t a, int64_t b) {
            for (int64_t i = a; i < b; i++)
                if (f(static_cast<size_t>(i))) failed = 1;
        });
    }
    TORCH_CHECK(!failed, "lc_kernel: could not allocate its offset table");
}

float *ptr(const at::Tensor &t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// Bytes of scratch kept by all threads (scratch_bytes reports it).
std::atomic<int64_t> scratch_total{0};
// Bumped by release_scratch: a thread whose scratch is of an older generation frees it at
// its next call, then keeps what that call needs.
std::atomic<int64_t> scratch_generation{0};

// The kernel's scratch floats, kept per calling thread between calls (the kernel uses them
// only during a call). Allocating them per call cost page faults at large shapes: glibc
// hands large freed blocks back to the system, and the next call faults them in again
// (measured at 28x28, C = O = 64, B = 64, two threads: 8,000 faults a step, 86 vs 72 ms).
// A thread's scratch only grows, so it keeps the largest any call has needed until
// release_scratch (the benchmark releases it between shapes, whose memory it measures).
struct Scratch {
    std::vector<float> buf;
    int64_t generation = 0;
    float *get(size_t floats) {
        const int64_t now = scratch_generation.load();
        if (generation != now) {
            scratch_total -= static_cast<int64_t>(buf.size() * sizeof(float));
            std::vector<float>().swap(buf);
            generation = now;
        }
        if (buf.size() < floats) {
            scratch_total += static_cast<int64_t>((floats - buf.size()) * sizeof(float));
            buf.resize(floats);
        }
        return buf.data();
    }
    ~Scratch() { scratch_total -= static_cast<int64_t>(buf.size() * sizeof(float)); }
};

float *scratch(size_t floats) {
    thread_local Scratch s;
    return s.get(floats);
}

struct LocallyConnectedFn : public torch::autograd::Function<LocallyConnectedFn> {
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x_in,
                              const at::Tensor &w_in, const std::optional<at::Tensor> &bias_in,
                              const std::optional<at::Tensor> &dw_buffer,
                              std::vector<int64_t> geometry) {
        at::Tensor x = x_in.contiguous(), w = w_in.contiguous();
        at::Tensor bias = bias_in.has_value() && bias_in->defined() ? bias_in->contiguous()
                                                                     : at::Tensor();
        const Plan pl = make_plan(geometry);
        const long *gm = pl.gm.data();
        const auto &g = geometry;  // B, C, H, W, ph, pw, kh, kw, sh, sw, Ho, Wo, O
        TORCH_CHECK(x.sizes() == at::IntArrayRef(g.data(), 4) && w.size(0) == g[10] * g[11]
                        && w.size(2) == g[12],
                    "gardenpath::locally_connected: geometry does not match x and weight");
        at::Tensor xt = at::empty({g[2] + 2 * g[4], g[3] + 2 * g[5], g[1], g[0]}, x.options());
        at::Tensor y = at::empty({g[0], g[12], g[10], g[11]}, x.options());
        const size_t n = pl.parts.size();
        float *work = scratch(n * pl.work_floats);
        // with one part the forward call packs the input itself; otherwise pack first
        if (n > 1) lc_pack(ptr(x), ptr(xt), gm);
        run_parts(n, [&](size_t i) {
            return lc_forward(n == 1 ? ptr(x) : nullptr, ptr(xt), ptr(w), ptr(bias), ptr(y),
                              work + i * pl.work_floats, pl.parts[i][0], pl.parts[i][1], gm);
        });
        ctx->save_for_backward({xt, w});
        ctx->saved_data["geometry"] = geometry;
        ctx->saved_data["has_bias"] = bias.defined();
        if (dw_buffer.has_value() && dw_buffer->defined())
            ctx->saved_data["dw_buffer"] = *dw_buffer;
        return y;
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &xt = saved[0], &w = saved[1];
        const auto geometry = ctx->saved_data["geometry"].toIntVector();
        const at::IntArrayRef x_shape(geometry.data(), 4);
        const bool has_bias = ctx->saved_data["has_bias"].toBool();
        const bool want_dx = ctx->needs_input_grad(0), want_dw = ctx->needs_input_grad(1);
        const bool want_db = has_bias && ctx->needs_input_grad(2);
        const Plan pl = make_plan(geometry);
        const long *gm = pl.gm.data();
        const size_t n = pl.parts.size();
        at::Tensor dy = grads[0].contiguous();  // (B, O, Ho, Wo), read in place
        at::Tensor dw;
        auto buf = ctx->saved_data.find("dw_buffer");
        if (buf != ctx->saved_data.end()) {
            // moved out: a second reference would make autograd copy it into .grad
            if (want_dw) dw = std::move(buf->second).toTensor();
            ctx->saved_data.erase(buf);
        }
        if (want_dw && !dw.defined()) dw = at::empty_like(w);
        // each part adds into its own padded input gradient (like xt); summed by unpack
        std::vector<at::Tensor> dxts;
        std::vector<float *> dxt_ptrs;
        for (size_t i = 0; i < n && want_dx; i++) {
            dxts.push_back(at::empty_like(xt));
            dxt_ptrs.push_back(ptr(dxts.back()));
        }
        at::Tensor dx = want_dx ? at::empty(x_shape, xt.options()) : at::Tensor();
        at::Tensor db = want_db ? at::empty(dy.sizes().slice(1), dy.options()) : at::Tensor();
        float *work = scratch(n * pl.work_floats);
        run_parts(n, [&](size_t i) {
            return lc_backward(ptr(xt), ptr(w), ptr(dy), ptr(dw),
                               want_dx ? dxt_ptrs[i] : nullptr, ptr(db),
                               n == 1 ? ptr(dx) : nullptr, work + i * pl.work_floats,
                               pl.parts[i][0], pl.parts[i][1], gm, want_dw, want_dx);
        });
        if (want_dx && n > 1) lc_unpack(dxt_ptrs.data(), static_cast<long>(n), ptr(dx), gm);
        return {dx, dw, db, at::Tensor(), at::Tensor()};
    }
};

at::Tensor locally_connected(const at::Tensor &x, const at::Tensor &weight,
                             const std::optional<at::Tensor> &bias,
                             const std::optional<at::Tensor> &dw_buffer,
                             at::IntArrayRef geometry) {
    TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4,
                "gardenpath::locally_connected takes a (B, C, H, W) float32 CPU input");
    TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == at::kFloat
                    && weight.dim() == 3,
                "gardenpath::locally_connected takes an (L, C*kh*kw, O) float32 CPU weight");
    return LocallyConnectedFn::apply(x, weight, bias, dw_buffer, geometry.vec());
}

// A layer that computes nothing: allocates its output and its inputs' gradients. What any
// layer driven from PyTorch through a C++ autograd function pays besides its arithmetic
// (benchmarks/local.py compares it with the floor).
struct EmptyStepFn : public torch::autograd::Function<EmptyStepFn> {
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &w,
                              const at::Tensor &b, std::vector<int64_t> out_shape) {
        ctx->saved_data["x"] = x.sizes().vec();
        ctx->saved_data["w"] = w.sizes().vec();
        ctx->saved_data["b"] = b.sizes().vec();
        return at::empty(out_shape, x.options());
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        variable_list out;
        for (const char *name : {"x", "w", "b"})
            out.push_back(at::empty(ctx->saved_data[name].toIntVector(), grads[0].options()));
        out.push_back(at::Tensor());
        return out;
    }
};

int64_t scratch_bytes() { return scratch_total.load(); }

void release_scratch() { scratch_generation++; }

at::Tensor empty_step(const at::Tensor &x, const at::Tensor &w, const at::Tensor &b,
                      at::IntArrayRef out_shape) {
    return EmptyStepFn::apply(x, w, b, out_shape.vec());
}

}  // namespace

TORCH_LIBRARY(gardenpath, m) {
    m.def("locally_connected(Tensor x, Tensor weight, Tensor? bias, Tensor? dw_buffer, "
          "int[] geometry) -> Tensor");
    m.def("empty_step(Tensor x, Tensor weight, Tensor bias, int[] out_shape) -> Tensor");
    m.def("scratch_bytes() -> int", &scratch_bytes);
    m.def("release_scratch() -> ()", &release_scratch);
}

TORCH_LIBRARY_IMPL(gardenpath, CompositeImplicitAutograd, m) {
    m.impl("locally_connected", locally_connected);
    m.impl("empty_step", empty_step);
}
