"""LocallyConnected2d: equivalence with Conv2d, gradients, sharing, meta device, cost."""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gardenpath.models import lc_native
from gardenpath.models.local import LocallyConnected2d, conv_out_size


def _random_cases(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def r(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    for _ in range(n):
        k = r(1, 4)
        yield dict(b=r(1, 3), c=r(1, 4), o=r(1, 5), k=k, s=r(1, 3), p=r(0, k - 1),
                   h=r(k, 9), w=r(k, 9), bias=bool(r(0, 1)))


@pytest.mark.parametrize("case", list(_random_cases(12)))
def test_from_conv_matches_conv_outputs_and_summed_weight_gradients(case):
    torch.manual_seed(1)
    conv = nn.Conv2d(case["c"], case["o"], case["k"], case["s"], case["p"], bias=case["bias"])
    x = torch.randn(case["b"], case["c"], case["h"], case["w"])
    lc = LocallyConnected2d.from_conv(conv, (case["h"], case["w"]))
    y_conv, y_lc = conv(x), lc(x)
    assert y_lc.shape == y_conv.shape
    assert lc.out_size == tuple(y_conv.shape[-2:])
    torch.testing.assert_close(y_lc, y_conv, rtol=1e-5, atol=1e-5)

    grad_out = torch.randn_like(y_conv)
    y_conv.backward(grad_out)
    y_lc.backward(grad_out)
    summed = lc.weight.grad.sum(0).t().reshape(conv.weight.shape)  # (out, C, k, k)
    torch.testing.assert_close(summed, conv.weight.grad, rtol=1e-4, atol=1e-4)
    if case["bias"]:
        torch.testing.assert_close(lc.bias.grad.sum((1, 2)), conv.bias.grad, rtol=1e-4,
                                   atol=1e-4)


def test_positions_have_independent_filters():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, 3, 5, padding=1)
    x = torch.randn(2, 2, 5, 5)
    y = lc(x)
    with torch.no_grad():
        lc.weight[7].zero_()  # position 7 = row 1, column 2
        lc.bias[:, 1, 2] = 0
    y2 = lc(x)
    changed = (y2 != y).any(dim=(0, 1))  # (H_out, W_out)
    assert changed[1, 2] and changed.sum() == 1
    assert torch.all(y2[:, :, 1, 2] == 0)


def test_gradcheck_float64():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, 3, (5, 4), stride=2, padding=1, dtype=torch.float64)
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return torch.func.functional_call(lc, {"weight": w, "bias": b}, (x,))

    w = lc.weight.detach().clone().requires_grad_(True)
    b = lc.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x, w, b))


def test_share_weights_turns_it_into_the_mean_convolution():
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 4, 3, 6, stride=1, padding=1)
    mean_w = lc.weight.detach().mean(0).t().reshape(4, 3, 3, 3)  # (out, C, k, k)
    mean_b = lc.bias.detach().mean((1, 2))
    x = torch.randn(2, 3, 6, 6)
    assert not torch.allclose(lc(x), nn.functional.conv2d(x, mean_w, mean_b, padding=1))
    lc.share_weights_()
    torch.testing.assert_close(lc(x), nn.functional.conv2d(x, mean_w, mean_b, padding=1),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lc.conv_weight(), mean_w)


def test_builds_on_meta_device_with_expected_shapes():
    lc = LocallyConnected2d(64, 64, 3, 56, padding=1, device="meta", bias=False)
    assert lc.weight.device.type == "meta"
    assert lc.weight.shape == (56 * 56, 64 * 9, 64)
    assert lc.weight.numel() == 56 * 56 * 64 * 9 * 64
    y = lc(torch.empty(8, 64, 56, 56, device="meta"))
    assert y.shape == (8, 64, 56, 56)


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        numel = out.numel() if isinstance(out, torch.Tensor) else 0
        self.ops.append((str(func.overloadpacket.__name__), numel))
        return out


def test_bmm_path_is_one_batched_matmul_without_a_blown_up_intermediate():
    b, c, o, k, n = 4, 3, 5, 3, 7
    lc = LocallyConnected2d(c, o, k, n)
    x = torch.randn(b, c, n, n)
    with _Ops() as rec:
        lc.forward_bmm(x)
    names = [name for name, _ in rec.ops]
    matmuls = [nm for nm in names if nm in ("bmm", "mm", "matmul", "baddbmm", "addmm", "einsum")]
    assert matmuls == ["bmm"], names
    positions = lc.num_positions
    biggest = max(numel for _, numel in rec.ops)
    assert biggest <= b * positions * max(c * k * k, o)  # never B x L x out x C*k*k
    assert biggest < b * positions * o * c * k * k


def test_rejects_wrong_input_shape_and_oversized_kernel():
    lc = LocallyConnected2d(1, 2, 3, 8)
    with pytest.raises(ValueError, match="expected"):
        lc(torch.randn(1, 1, 9, 8))
    with pytest.raises(ValueError):
        conv_out_size(2, 5)


# --------------------------------------------------------------------------- fused CPU kernel

needs_native = pytest.mark.skipif(not lc_native.available(),
                                  reason=f"fused kernel unavailable: {lc_native.status()}")

#: (C, O, k, H, stride, padding, B): every code path of lc_kernel.c, with VL = 16 floats per
#: vector (AVX-512) or 8 (AVX2) — dx by broadcast groups (B <= 8 with O a multiple of the
#: group size VL / NB: four-chunk sweeps and single chunks, the in-lane reduction at B = 4,
#: vector adds at B = 8, lane by lane otherwise, K % VL rows after the last full block), by
#: W @ G^T (B % VL == 0, B > 8), by transpose + gemm (the rest); full and half vector tiles
#: and scalar column tails; kernel sizes with and without a specialised gather; strides and
#: padding.
NATIVE_CASES = [
    (3, 5, 3, 7, 1, 0, 2), (4, 33, 5, 9, 2, 2, 3), (16, 16, 3, 16, 1, 1, 16),
    (32, 32, 3, 10, 1, 1, 16), (3, 70, 5, 11, 1, 2, 1), (8, 20, 3, 10, 3, 1, 5),
    (32, 32, 3, 10, 1, 0, 1), (5, 48, 3, 9, 1, 1, 2), (7, 16, 5, 12, 2, 1, 1),
    (4, 64, 3, 8, 1, 1, 32), (3, 16, 2, 6, 1, 0, 17), (2, 3, 4, 9, 2, 0, 4),
    # weight gradients written with streaming stores, both gradients in one sweep: 38 MB,
    # and 5.3 MB through the register-tiled gemm
    (32, 32, 3, 34, 1, 0, 2), (32, 32, 3, 12, 1, 1, 16),
    (32, 32, 3, 10, 1, 1, 4), (3, 16, 3, 9, 1, 0, 3), (5, 48, 3, 8, 2, 1, 8),
    (16, 32, 3, 8, 1, 1, 6), (5, 80, 3, 8, 1, 1, 1), (3, 20, 3, 9, 1, 0, 4),
    # packed VL columns at a time (batch 1, 2, 4, 8; VL / B channels dividing C), with tails
    (8, 16, 3, 17, 1, 1, 4), (16, 8, 3, 20, 2, 1, 1), (4, 8, 3, 16, 1, 0, 8),
    # batch 4 or 8, O a multiple of 8 or 4 (input gradient by broadcast pairs, AVX-512):
    # row and chunk tails
    (5, 24, 3, 9, 2, 1, 4), (5, 12, 3, 9, 1, 1, 8),
    # batch 1 through gemv (O a multiple of VL, up to 8 VL): 3 and 8 vectors with AVX2, and
    # the input gradient's transposed fallback (O not a multiple of VL, K = 16) through it
    (2, 24, 3, 6, 1, 1, 1), (3, 64, 3, 7, 1, 0, 1), (16, 12, 1, 5, 1, 0, 1),
    # batch 1 and 2 with dW streamed (4.2 and 5.2 MB): its rows written between the input
    # gradient's, K = 27 and 45 leaving row tails
    (3, 32, 3, 37, 1, 0, 1), (5, 32, 3, 30, 1, 1, 2),
    # batch 3 and 4, the same (4.2 MB); with AVX2 both gradients by blocks of 16 rows for O
    # = 8, 16, 32 (K = 27: a block and a tail; K = 288: 18 blocks, and the forward's
    # register tiles in two blocks of K, the second adding into the first) and row by row
    # for O = 24: batch 1 to 4 and O = 8, 16, 24 (4.3-5.3 MB); batch 4 and O >= 64 (input gradient
    # by quads with AVX2): dW streamed (4.7 MB, K = 63) and not (O = 72, K = 81), row tails
    (3, 32, 3, 37, 1, 0, 3), (3, 32, 3, 37, 1, 0, 4), (3, 24, 3, 44, 1, 0, 4),
    (3, 8, 3, 75, 1, 0, 4), (3, 16, 3, 52, 1, 0, 3), (3, 8, 3, 75, 1, 0, 2),
    (3, 24, 3, 44, 1, 0, 1), (7, 64, 3, 19, 1, 0, 4), (9, 72, 3, 13, 1, 1, 4),
    (32, 32, 3, 12, 1, 1, 4), (32, 16, 3, 16, 1, 1, 3),
]


def test_fused_kernel_builds_where_a_c_compiler_exists():
    """A kernel that fails to compile must fail the suite, not skip the tests above: the
    layer would silently fall back to bmm (the AVX-512-only kernel did so on AVX2 CPUs)."""
    if lc_native.switched_off(lc_native.ENV_SWITCH):
        pytest.skip(f"switched off by {lc_native.ENV_SWITCH}")
    if lc_native.c_compiler() is None:
        pytest.skip("no C compiler")
    assert lc_native.available(), lc_native.status()


@needs_native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", NATIVE_CASES, ids=lambda c: "C{}O{}k{}H{}s{}p{}B{}".format(*c))
def test_fused_kernel_equals_the_bmm_path(case, threads):
    c, o, k, h, s, p, b = case
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lc = LocallyConnected2d(c, o, k, h, stride=s, padding=p)
        x = torch.randn(b, c, h, h, requires_grad=True)
        assert lc_native.applies(x, lc.weight)
        y = lc(x)
        dy = torch.randn_like(y)
        got = torch.autograd.grad(y, (x, lc.weight, lc.bias), dy)
        y_ref = lc.forward_bmm(x)  # the path gradcheck covers (float64 takes it)
        want = torch.autograd.grad(y_ref, (x, lc.weight, lc.bias), dy)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@needs_native
def test_one_layer_serves_batches_of_any_size_in_turn():
    """The layer keeps the kernel's geometry between calls, by batch size: calls with
    batches of 3, 2 and 3 each give the bmm path's output and gradients, and an input of
    the wrong shape is still refused, saying what was expected."""
    torch.manual_seed(0)
    lc = LocallyConnected2d(3, 5, 3, 6, padding=1)
    for b in (3, 2, 3):
        x = torch.randn(b, 3, 6, 6, requires_grad=True)
        y = lc(x)
        dy = torch.randn_like(y)
        got = torch.autograd.grad(y, (x, lc.weight, lc.bias), dy)
        y_ref = lc.forward_bmm(x)
        want = torch.autograd.grad(y_ref, (x, lc.weight, lc.bias), dy)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    for bad in (torch.randn(3, 6, 6), torch.randn(2, 4, 6, 6), torch.randn(2, 3, 6, 5)):
        with pytest.raises(ValueError, match=r"expected \(B, 3, 6, 6\)"):
            lc(bad)


@needs_native
@pytest.mark.parametrize("shift", [0, 1, 4, 13])
@pytest.mark.parametrize("b, o, n", [(4, 24, 44), (8, 16, 52)])
def test_any_start_of_the_work_buffer_gives_the_same_results_and_stays_inside(shift, b, o, n):
    """The kernel moves its scratch to the first 64-byte line of ``work`` (a speed matter,
    see lc_kernel.c; not checked here): whatever the buffer's start, a buffer of
    ``lc_work_floats`` floats gives the aligned call's results and nothing is written outside
    it. K = 27 (no part a whole number of lines), dW streamed; B = 4, O = 24: the row-by-row
    fused backward (dxdw_rows); B = 8: the broadcast-group input gradient, which fills the
    last part."""
    lib = lc_native.library()
    c, k = 3, 3
    ho = n - k + 1
    gm = lc_native.plan(lc_native.geometry((b, c, n, n), o, (k, k), (1, 1), (0, 0),
                                           (ho, ho)), 1).gm
    floats = int(lib.lc_work_floats(gm))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, n, n, generator=g)
    w = torch.randn(ho * ho, c * k * k, o, generator=g)
    dy = torch.randn(b, o, ho * ho, generator=g)
    assert 4 * w.numel() >= 4 << 20  # dW streams (DW_STREAM_MIN_BYTES)

    def run(work: torch.Tensor) -> list[torch.Tensor]:
        xt, y = torch.empty(n, n, c, b), torch.empty_like(dy)
        dw, dxt, dx = torch.empty_like(w), torch.empty_like(xt), torch.empty_like(x)
        assert lib.lc_forward(x.data_ptr(), xt.data_ptr(), w.data_ptr(), None, y.data_ptr(),
                              work.data_ptr(), 0, ho * ho, gm) == 0
        assert lib.lc_backward(xt.data_ptr(), w.data_ptr(), dy.data_ptr(), dw.data_ptr(),
                               dxt.data_ptr(), None, dx.data_ptr(), work.data_ptr(), 0,
                               ho * ho, gm, 1, 1) == 0
        return [y, dw, dx]

    want = run(torch.empty(floats))
    guard = torch.full((floats + 64,), float("nan"))
    got = run(guard[shift:shift + floats])
    for t, r in zip(got, want, strict=True):
        torch.testing.assert_close(t, r, rtol=0, atol=0)
    assert guard[:shift].isnan().all() and guard[shift + floats:].isnan().all()


@needs_native
def test_fused_kernel_never_materialises_the_unfolded_input():
    from gardenpath.measure.memory import peak_memory

    b, c, o, k, n = 64, 4, 4, 3, 12  # the unfolded input dwarfs weights and activations
    lc = LocallyConnected2d(c, o, k, n, padding=1)
    x = torch.randn(b, c, n, n, requires_grad=True)
    dy = torch.randn(b, o, n, n)
    unfolded = 4 * b * lc.num_positions * c * k * k
    cpu = torch.device("cpu")
    fused = peak_memory(lambda: lc(x).backward(dy), cpu).peak_bytes
    bmm = peak_memory(lambda: lc.forward_bmm(x).backward(dy), cpu).peak_bytes
    assert fused < unfolded <= bmm, (fused, unfolded, bmm)


def test_flop_counter_sees_the_layers_arithmetic():
    from torch.utils.flop_counter import FlopCounterMode

    lc = LocallyConnected2d(3, 5, 3, 8)
    x = torch.randn(2, 3, 8, 8)
    with FlopCounterMode(display=False) as mode:
        lc(x)  # under a dispatch mode the layer takes its bmm path, which the counter sees
    assert mode.get_total_flops() == 2 * 2 * lc.num_positions * lc.fan_in * 5


@needs_native
def test_weight_gradient_pool_reuses_storage_only_when_nothing_holds_it():
    lc = LocallyConnected2d(32, 32, 3, 16)  # 196 x 288 x 32 floats: above POOL_MIN_BYTES
    assert lc.weight.numel() * 4 >= lc_native.POOL_MIN_BYTES
    x = torch.randn(2, 32, 16, 16)
    lc(x).sum().backward()
    first = lc.weight.grad
    pooled, kept = first.data_ptr(), first.clone()
    lc.weight.grad = None
    lc(x).sum().backward()  # `first` is still referenced: its storage must not be reused
    assert lc.weight.grad.data_ptr() != pooled
    torch.testing.assert_close(first, kept)
    del first
    lc.weight.grad = None  # now nothing but the pool holds that storage
    lc(x).sum().backward()
    assert lc.weight.grad.data_ptr() == pooled
    torch.testing.assert_close(lc.weight.grad, kept)
    assert lc_native.grad_pool.held_bytes() >= lc.weight.numel() * 4
    # accumulation into an existing .grad adds (the pool never hands out .grad's storage)
    g1 = lc.weight.grad.clone()
    lc(x).sum().backward()
    torch.testing.assert_close(lc.weight.grad, 2 * g1)


@needs_native
def test_frozen_weights_no_grad_and_repeated_backward_through_the_kernel():
    torch.manual_seed(0)
    lc = LocallyConnected2d(4, 6, 3, 7, padding=1)
    x = torch.randn(3, 4, 7, 7, requires_grad=True)
    with torch.no_grad():
        torch.testing.assert_close(lc(x), lc.forward_bmm(x), rtol=1e-5, atol=1e-5)
    lc.weight.requires_grad_(False)  # frozen filters: only the input and bias get gradients
    y = lc(x)
    dy = torch.randn_like(y)
    y.backward(dy, retain_graph=True)
    assert lc.weight.grad is None
    want = torch.autograd.grad(lc.forward_bmm(x), (x, lc.bias), dy)
    torch.testing.assert_close(x.grad, want[0], rtol=1e-5, atol=1e-5)
    y.backward(dy)  # a second backward through the same graph accumulates
    torch.testing.assert_close(x.grad, 2 * want[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lc.bias.grad, 2 * want[1], rtol=1e-5, atol=1e-5)


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """Forget the loaded kernel for one test, with a private cache directory."""
    lc_native.available()  # loaded once from the usual cache (a private one would rebuild it)
    monkeypatch.setenv("GARDENPATH_CACHE_DIR", str(tmp_path / "cache"))
    lc_native._load.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    lc_native._load.cache_clear()


def test_layer_falls_back_to_bmm_when_the_kernel_is_switched_off(fresh_loader):
    fresh_loader.setenv("GARDENPATH_LC_NATIVE", "0")
    assert not lc_native.available()
    assert "GARDENPATH_LC_NATIVE=0" in lc_native.status()
    lc = LocallyConnected2d(2, 3, 3, 6)
    x = torch.randn(2, 2, 6, 6)
    with _Ops() as rec:
        y = lc(x)
    assert "bmm" in [name for name, _ in rec.ops]
    torch.testing.assert_close(y, lc.forward_bmm(x))


def test_failed_compile_is_reported_and_the_layer_still_works(fresh_loader, tmp_path):
    failing = shutil.which("false")  # a "compiler" that always fails
    fresh_loader.setenv("CC", failing)
    assert not lc_native.available()
    assert lc_native.status().startswith("compile failed")
    assert not any((tmp_path / "cache").glob("*.so"))  # nothing half-built left behind
    lc = LocallyConnected2d(2, 3, 3, 6)
    assert lc(torch.randn(1, 2, 6, 6)).shape == (1, 3, 4, 4)


def _step_scratch_bytes(c: int, n: int, b: int) -> int:
    """Run a training step of a c -> c, 3x3 layer on (b, c, n, n); the bytes of scratch it
    needs (one part per thread, as lc_native.plan splits them)."""
    lc = LocallyConnected2d(c, c, 3, n)
    x = torch.randn(b, c, n, n, requires_grad=True)
    lc(x).sum().backward()
    pl = lc_native.plan(lc_native.geometry(x.shape, c, lc.kernel_size, lc.stride,
                                           lc.padding, lc.out_size), torch.get_num_threads())
    return 4 * pl.work_floats * len(pl.parts)


@needs_native
def test_release_drops_what_larger_shapes_left_kept():
    big = _step_scratch_bytes(32, 16, 8)
    assert lc_native.held_bytes() >= big
    lc_native.release()
    small = _step_scratch_bytes(4, 6, 1)
    assert small < big // 10
    # the pooled gradient is gone; the scratch is what the small step needs
    assert lc_native.grad_pool.held_bytes() == 0
    assert lc_native.held_bytes() < big // 2


def test_kernel_source_is_part_of_the_chapters_cache_key(tmp_path):
    from gardenpath.pipeline import tree_digest

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "k.c").write_text("int f(void) { return 1; }\n")
    before = tree_digest(tmp_path)
    (tmp_path / "k.c").write_text("int f(void) { return 2; }\n")
    assert tree_digest(tmp_path) != before


def test_method_sentence_names_the_path_that_runs(fresh_loader):
    assert "torch.bmm" in lc_native.describe("cuda")  # CUDA always takes the bmm path
    assert "`" not in lc_native.describe("cpu")  # glued as plain text into the prose
    assert ("fused C kernel" in lc_native.describe("cpu")) == lc_native.available()
    if lc_native.available():
        assert "ctypes" in lc_native.describe("cpu")
    fresh_loader.setenv("GARDENPATH_LC_NATIVE", "0")
    lc_native._load.cache_clear()
    sentence = lc_native.describe("cpu")
    assert "torch.bmm" in sentence and "GARDENPATH_LC_NATIVE=0" in sentence


#: What runs on every call of the layer on the CPU (issue 28: no private torch API there).
_HOT_PATH = [LocallyConnected2d.forward, lc_native.applies, lc_native.locally_connected,
             lc_native.LocalFn, lc_native.GradPool, lc_native._note_grad, lc_native.plan,
             lc_native._executor, lc_native._run, lc_native._work]


@pytest.mark.parametrize("fn", _HOT_PATH, ids=lambda f: f.__qualname__)
def test_hot_path_uses_no_private_torch_api(fn):
    import inspect
    import re

    src = inspect.getsource(inspect.unwrap(fn))
    assert "torch._C" not in src
    assert not re.search(r"torch(\.\w+)*\._\w", src), "a private torch module or function"
    assert not re.search(r"_pool\._|_max_workers|_cdata|_use_count", src, re.I)


def test_torch_function_mode_gets_the_bmm_path():
    """A torch function mode (as tracers use) sees the layer's arithmetic as torch calls."""
    from torch.overrides import TorchFunctionMode

    seen = []

    class Log(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    lc = LocallyConnected2d(2, 3, 3, 6)
    x = torch.randn(2, 2, 6, 6)
    with Log():
        y = lc(x)
    assert "bmm" in seen
    torch.testing.assert_close(y, lc.forward_bmm(x))


#: x86-64 targets the kernel must build for: its baseline (SSE2, 4-float vectors), AVX2 with
#: FMA (8 floats, 16 registers) and AVX-512 (16 floats, 32 registers); the /proc/cpuinfo
#: flags a target needs to run.
_ISA_TARGETS = {
    "x86-64": ("-march=x86-64", ()),
    "avx2": ("-march=x86-64-v3", ("avx2", "fma", "bmi2")),
    "avx512": ("-march=x86-64-v4", ("avx512f", "avx512bw", "avx512dq", "avx512vl")),
}
_ISA_CASES = [(3, 5, 3, 7, 1, 0, 2), (16, 16, 3, 16, 1, 1, 16), (7, 64, 3, 19, 1, 0, 4),
              (2, 24, 3, 6, 1, 1, 1), (5, 12, 3, 9, 1, 1, 8), (32, 32, 3, 12, 1, 1, 4)]


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def _run_build(lib, case) -> None:
    """One training step of ``case`` through ``lib``, against the unfold + bmm reference."""
    c, o, k, h, s, p, b = case
    torch.manual_seed(0)
    lc = LocallyConnected2d(c, o, k, h, stride=s, padding=p)
    x = torch.randn(b, c, h, h, requires_grad=True)
    y_ref = lc.forward_bmm(x)
    dy = torch.randn(y_ref.shape)  # contiguous, as the kernel reads it (y_ref is not)
    dx_ref, dw_ref, db_ref = torch.autograd.grad(y_ref, (x, lc.weight, lc.bias), dy)
    geom = lc_native.geometry(x.shape, o, lc.kernel_size, lc.stride, lc.padding, lc.out_size)
    gm = lc_native.plan(geom, 1).gm  # the geometry array; its scratch size is the build's
    n = lc.num_positions
    work = torch.empty(int(lib.lc_work_floats(gm)))
    xd, w = x.detach(), lc.weight.detach()
    xt = torch.empty(h + 2 * p, h + 2 * p, c, b)
    y, dw, dxt = torch.empty(y_ref.shape), torch.empty_like(w), torch.empty_like(xt)
    dx, db = torch.empty_like(xd), torch.empty(db_ref.shape)
    assert lib.lc_forward(xd.data_ptr(), xt.data_ptr(), w.data_ptr(), lc.bias.data_ptr(),
                          y.data_ptr(), work.data_ptr(), 0, n, gm) == 0
    assert lib.lc_backward(xt.data_ptr(), w.data_ptr(), dy.data_ptr(), dw.data_ptr(),
                           dxt.data_ptr(), db.data_ptr(), dx.data_ptr(), work.data_ptr(), 0,
                           n, gm, 1, 1) == 0
    for got, want in ((y, y_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 targets")
@pytest.mark.parametrize("target", list(_ISA_TARGETS))
def test_kernel_builds_without_warnings_and_matches_unfold_on_each_x86_target(target,
                                                                             tmp_path):
    """Compile lc_kernel.c for the target with the layer's flags (warnings on, none
    allowed); run it against the unfold + bmm layer where this CPU has the target's
    instructions, else only compile it (``-march=native`` tests only the machine at hand)."""
    cc = lc_native.c_compiler()
    if cc is None:
        pytest.skip("no C compiler")
    march, needs = _ISA_TARGETS[target]
    flags = [f for f in lc_native.FLAGS if not f.startswith("-march=")]
    assert {"-Wall", "-Wextra"} <= set(flags)
    out = tmp_path / f"lc_kernel-{target}.so"
    res = subprocess.run([cc, *flags, march, str(lc_native.SOURCE), "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr, res.stderr
    missing = set(needs) - _cpu_flags()
    if missing:
        pytest.skip(f"compiled only: this CPU lacks {sorted(missing)}")
    lib = lc_native.open_library(out)
    for case in _ISA_CASES:
        _run_build(lib, case)
