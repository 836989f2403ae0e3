"""Traffic: the fewest bytes each pass of a conv or locally connected layer must move.

The essay's claim is that tied parameters force data movement. To test it we need the
movement a pass cannot avoid, independent of any library's implementation: every
tensor a pass reads is read once, every tensor it writes is written once, nothing is
re-read (an ideal cache as large as the problem). Real kernels move at least this much;
measured time against this floor gives the achieved bandwidth, and FLOPs over it the
arithmetic intensity that places a pass on the roofline.

Per pass, with ``X`` the input, ``Y`` the output, ``Wt`` the weights (bias ignored) and
``d`` gradients of the same shapes:

* forward: read ``X`` and ``Wt``, write ``Y``;
* input gradient: read ``dY`` and ``Wt``, write ``dX``;
* weight gradient: read ``X`` and ``dY``, write ``dWt``.

So each pass moves ``(|X| + |Y| + |Wt|) * dtype_bytes`` bytes; sharing only changes
``|Wt|``: ``O C k_h k_w`` for a convolution, ``L`` times that for a locally connected
layer (``L = H_out W_out`` positions). The FLOPs are equal (see
:mod:`gardenpath.measure.flops`), so a locally connected layer has lower arithmetic
intensity. A second difference is the reduction each weight's gradient performs: a
shared weight sums ``B L`` partial products (one per sample and position), an unshared
one only ``B``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from gardenpath.measure.flops import IntPair, conv2d_flops, local2d_flops, out_size, pair

Sharing = Literal["conv", "local"]


@dataclass(frozen=True)
class Traffic:
    """Minimum bytes and FLOPs of one layer's forward, input-gradient and weight-gradient
    passes.

    Attributes:
        sharing: ``"conv"`` (one kernel shared over positions) or ``"local"``.
        input_shape: ``(B, C, H, W)``.
        output_shape: ``(B, O, H_out, W_out)``.
        weight_shape: ``(O, C, k_h, k_w)`` for conv, ``(L, C k_h k_w, O)`` for local.
        params: number of weights (bias excluded).
        dtype_bytes: bytes per element.
        input_bytes: ``|X| * dtype_bytes``.
        output_bytes: ``|Y| * dtype_bytes``.
        weight_bytes: ``|Wt| * dtype_bytes``.
        forward_bytes: read X, Wt; write Y.
        input_grad_bytes: read dY, Wt; write dX.
        weight_grad_bytes: read X, dY; write dWt.
        forward_flops: 2 * MACs of the forward pass.
        input_grad_flops: 2 * MACs of the input gradient.
        weight_grad_flops: 2 * MACs of the weight gradient.
        partial_products_per_weight_grad: products summed into each weight's gradient
            (conv ``B H_out W_out``, local ``B``).
    """

    sharing: Sharing
    input_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, ...]
    params: int
    dtype_bytes: int
    input_bytes: int
    output_bytes: int
    weight_bytes: int
    forward_bytes: int
    input_grad_bytes: int
    weight_grad_bytes: int
    forward_flops: int
    input_grad_flops: int
    weight_grad_flops: int
    partial_products_per_weight_grad: int

    @property
    def total_bytes(self) -> int:
        """Bytes of a training step's three passes (each tensor counted per pass)."""
        return self.forward_bytes + self.input_grad_bytes + self.weight_grad_bytes

    @property
    def total_flops(self) -> int:
        """FLOPs of the three passes."""
        return self.forward_flops + self.input_grad_flops + self.weight_grad_flops

    @property
    def forward_intensity(self) -> float:
        """Forward FLOPs per byte moved (FLOP/byte)."""
        return self.forward_flops / self.forward_bytes

    @property
    def input_grad_intensity(self) -> float:
        """Input-gradient FLOPs per byte moved (FLOP/byte)."""
        return self.input_grad_flops / self.input_grad_bytes

    @property
    def weight_grad_intensity(self) -> float:
        """Weight-gradient FLOPs per byte moved (FLOP/byte)."""
        return self.weight_grad_flops / self.weight_grad_bytes

    @property
    def intensity(self) -> float:
        """Whole-step FLOPs per byte (FLOP/byte)."""
        return self.total_flops / self.total_bytes

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields and derived totals and intensities."""
        out = asdict(self)
        for name in (
            "total_bytes",
            "total_flops",
            "forward_intensity",
            "input_grad_intensity",
            "weight_grad_intensity",
            "intensity",
        ):
            out[name] = getattr(self, name)
        return out


def layer_traffic(
    sharing: Sharing,
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    in_size: IntPair,
    batch_size: int = 1,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dtype_bytes: int = 4,
) -> Traffic:
    """Fewest bytes and the FLOPs of each pass of a conv or locally connected layer.

    Element counts (multiply by ``dtype_bytes`` for bytes):

    * ``|X| = B C H W``; ``|Y| = B O H_out W_out``;
    * conv ``|Wt| = O C k_h k_w``; local ``|Wt| = H_out W_out O C k_h k_w``;
    * each pass: ``|X| + |Y| + |Wt|`` (two tensors read once, one written once);
    * FLOPs per pass ``2 B H_out W_out C k_h k_w O`` for both.

    Args:
        sharing: ``"conv"`` or ``"local"``.
        in_channels: ``C``.
        out_channels: ``O``.
        kernel_size: ``k`` or ``(k_h, k_w)``.
        in_size: input side ``H`` or ``(H, W)``.
        batch_size: ``B``.
        stride: as in ``torch.nn.Conv2d``.
        padding: zero padding, as in ``torch.nn.Conv2d``.
        dtype_bytes: bytes per element (4 for float32, 2 for bf16/fp16).

    Returns:
        A :class:`Traffic`.
    """
    if sharing not in ("conv", "local"):
        raise ValueError(f"sharing must be 'conv' or 'local', not {sharing!r}")
    (h, w), (kh, kw) = pair(in_size), pair(kernel_size)
    oh, ow = out_size(in_size, kernel_size, stride, padding)
    positions = oh * ow
    receptive = in_channels * kh * kw
    x_elems = batch_size * in_channels * h * w
    y_elems = batch_size * out_channels * positions
    if sharing == "conv":
        weight_shape: tuple[int, ...] = (out_channels, in_channels, kh, kw)
        flops = conv2d_flops(
            in_channels, out_channels, kernel_size, in_size, batch_size, stride, padding
        )
        partial = batch_size * positions
    else:
        weight_shape = (positions, receptive, out_channels)
        flops = local2d_flops(
            in_channels, out_channels, kernel_size, in_size, batch_size, stride, padding
        )
        partial = batch_size
    w_elems = 1
    for d in weight_shape:
        w_elems *= d
    per_pass = (x_elems + y_elems + w_elems) * dtype_bytes
    return Traffic(
        sharing=sharing,
        input_shape=(batch_size, in_channels, h, w),
        output_shape=(batch_size, out_channels, oh, ow),
        weight_shape=weight_shape,
        params=w_elems,
        dtype_bytes=dtype_bytes,
        input_bytes=x_elems * dtype_bytes,
        output_bytes=y_elems * dtype_bytes,
        weight_bytes=w_elems * dtype_bytes,
        forward_bytes=per_pass,
        input_grad_bytes=per_pass,
        weight_grad_bytes=per_pass,
        forward_flops=flops.forward,
        input_grad_flops=flops.input_grad,
        weight_grad_flops=flops.weight_grad,
        partial_products_per_weight_grad=partial,
    )
