# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   gardenpath:
#     timeout_s: 900
# ---

# %% [markdown]
# # What sharing moves
#
# **The claim.** The essay {cite}`rinkus_essay` argues that tying parameters, as a
# convolutional network does, makes the computation inherently data-hungry: every shared
# weight's gradient has to be gathered from all the spatial positions the weight was used
# at, and that gathering is data movement, which is what costs energy (see the previous
# chapter). A layer without sharing, whose weights are local to each position as synapses
# are local to each neuron, would avoid it.
#
# **The experiment.** We put the two kinds of layer side by side with identical shapes: a
# convolution (`torch.nn.Conv2d`) and a locally connected layer (our
# `LocallyConnected2d`, the same filters but a separate copy at every output position, as in
# Gregor et al. {cite}`gregor_szlam_lecun_2011` and DeepFace {cite}`taigman_2014`), stride
# 1, "same" padding, no bias, as many output channels as input channels. For one training
# step (forward, input gradient, weight gradient) we count FLOPs, weights, the fewest bytes
# the step must move and how many partial products each weight's gradient sums, and we
# measure time, peak memory and energy on this device. We vary one factor at a time around
# a base layer: spatial side, channels, kernel and batch.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for weights and data
in_size = 16  # base layer: input side (pixels) [range: 3..]
channels = 32  # base layer: input and output channels [range: 1..]
kernel_size = 3  # base layer: kernel side, odd keeps the output the input's size (pixels) [range: 1..]
batch_size = 16  # base layer: images per step [range: 1..]
sweep_in_size = [8, 16, 32]  # spatial sides swept with the rest at base (pixels) [range: 3..]
sweep_channels = [8, 16, 32, 64]  # channel counts swept with the rest at base [range: 1..]
sweep_kernel_size = [1, 3, 5]  # kernel sides swept with the rest at base (pixels) [range: 1..]
sweep_batch_size = [1, 4, 16, 64]  # batch sizes swept with the rest at base [range: 1..]
min_run_time_s = 0.2  # measured time per timing point (s) [range: >0]
roofline_ws_mib = 256  # working set of the main-memory bandwidth measurement (MiB) [range: 1..]
matmul_n = 2048  # side of the square fp32 matmul that measures peak throughput (elements) [range: 64..]
energy_window_s = 1.0  # length of each energy-counter window, used only where a counter exists (s) [range: >0]
workers = 4  # workers in the communication comparison [range: 2..]
allow_tf32 = False  # let CUDA matmuls and convolutions use TensorFloat-32 (ignored on CPU)
threads = 1  # torch intra-op CPU threads while measuring; 0 keeps torch's default [range: 0..]

# %% tags=["hide-input"]
import torch
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import sharing_moves as ch
from gardenpath.measure.device import describe, prepare
from gardenpath.measure.energy import EnergyMonitor
from gardenpath.measure.roofline import Roofline
from gardenpath.models import lc_native

charts.enable()
dev = prepare(device, threads=threads, allow_tf32=allow_tf32)
info = describe(dev)
device_name = f"{info.get('name') or dev.type} ({dev})"

roof = Roofline.measure(dev, sizes_bytes=[roofline_ws_mib << 20], matmul_n=matmul_n,
                        min_run_time_s=min_run_time_s)
monitor = EnergyMonitor(dev)
energy_measured = monitor.method.startswith("measured")
energy_word = "measured" if energy_measured else "modelled, Horowitz 45 nm"

base = ch.Point(in_size, channels, kernel_size, batch_size)
sweeps = {"in_size": sweep_in_size, "channels": sweep_channels,
          "kernel_size": sweep_kernel_size, "batch_size": sweep_batch_size}
points, members = ch.sweep_points(base, sweeps)
table = ch.run_sweep(points, dev, roof, min_run_time_s, seed, energy_window_s, monitor)
pairs = ch.paired(table)

# %% tags=["hide-input"]
shown = ch.base_numbers(pairs, base)
shown.update(ch.sweep_numbers(pairs, table))
shown.update({"device_name": device_name, "lc_impl": lc_native.describe(dev),
              "energy_method": monitor.method,
              "torch_threads": torch.get_num_threads(), "n_points": len(points),
              "ridge_flop_per_byte": roof.ridge_intensity,
              "peak_gflops_per_s": roof.peak_flops_per_s / 1e9,
              "main_memory_gb_per_s": roof.peak_bytes_per_s / 1e9})
results.glue_all(shown)
glue("fig-sharing-ratios", charts.figure(
    ch.ratio_chart(ch.knob_rows(pairs, members, energy_word),
                   f"Locally connected against convolution, one factor at a time: "
                   f"{device_name}"), "sharing-ratios"), display=False)
glue("fig-sharing-tradeoff", charts.figure(
    ch.tradeoff_chart(ch.tradeoff_rows(table, members),
                      "What sharing trades: weights against the length of each gradient's sum"),
    "sharing-tradeoff"), display=False)
glue("fig-sharing-roofline", charts.figure(
    ch.roofline_chart(roof, table, f"Every measured training step on the roofline: "
                      f"{device_name}"), "sharing-roofline"), display=False)

# %% [markdown]
# ## Same arithmetic, more bytes without sharing
#
# At the base layer ({glue:text}`base_in_size` × {glue:text}`base_in_size` input,
# {glue:text}`base_channels` channels, {glue:text}`base_kernel_size` ×
# {glue:text}`base_kernel_size` kernel, batch {glue:text}`base_batch_size`), both layers
# do the same {glue:text}`base_mflops:,.1f` MFLOP per training step, counted by PyTorch's
# FLOP counter ({glue:text}`flops_equal_points` of {glue:text}`n_points` sweep points have
# identical counts for the two layers). What differs is the weights: the convolution has
# {glue:text}`base_params_conv:,` and the locally connected layer
# {glue:text}`base_params_local:,`, one filter bank for each of the
# {glue:text}`base_positions:,` output positions. Because every pass reads or writes the
# weights (the forward and input-gradient passes read them, the weight-gradient pass writes
# their gradient), the locally connected step must move {glue:text}`base_bytes_ratio:.1f`
# times the bytes ({glue:text}`base_mb_local:.2f` MB against
# {glue:text}`base_mb_conv:.2f` MB) and its arithmetic intensity falls from
# {glue:text}`base_intensity_conv:.1f` to {glue:text}`base_intensity_local:.1f` FLOPs per
# byte.
#
# ```{glue:figure} fig-sharing-ratios
# :name: fig-sharing-ratios
#
# Locally connected layer over convolution for each quantity (log scale; above the dashed
# line the locally connected layer costs more), varying one factor at a time around the
# base layer. Weights and fewest bytes are counted; step time, weight-gradient time and
# peak memory (weights plus what the step allocates) are measured on this device; energy
# is measured where a counter exists (the device's whole reading, idle power included) and
# otherwise modelled from Horowitz's 45 nm table, as the legend says.
# ```
#
# {numref}`fig-sharing-ratios` shows the same across the sweep: the locally connected
# layer moves {glue:text}`bytes_ratio_min:.1f` to {glue:text}`bytes_ratio_max:.1f` times
# the convolution's bytes, the gap growing with the number of positions and channels and
# shrinking with the batch (which the weights are shared across in both layers). Measured
# on {glue:text}`device_name` with {glue:text}`torch_threads` CPU thread(s), the locally
# connected step's time divided by the convolution's ranged from
# {glue:text}`time_ratio_min:.1f` to {glue:text}`time_ratio_max:.1f`
# ({glue:text}`base_ms_local:.2f` ms against {glue:text}`base_ms_conv:.2f` ms at the base
# layer), the ratio of peak memory from {glue:text}`memory_ratio_min:.1f` to
# {glue:text}`memory_ratio_max:.1f`, and the ratio of energy per step
# ({glue:text}`energy_method`) from {glue:text}`energy_ratio_min:.1f` to
# {glue:text}`energy_ratio_max:.1f`. The convolution was the slower of the two at
# {glue:text}`conv_slower_points` of {glue:text}`n_points` points.

# %% [markdown]
# ## What sharing trades
#
# ```{glue:figure} fig-sharing-tradeoff
# :name: fig-sharing-tradeoff
#
# Along the spatial sweep: the number of weights (left) and the number of partial products
# summed into each weight's gradient (right), for the two layers. Counted from the shapes.
# ```
#
# The essay's mechanism is real, and {numref}`fig-sharing-tradeoff` shows it: each of the
# convolution's weights sums {glue:text}`base_partial_conv:,` partial products into its
# gradient (one per image and output position), against {glue:text}`base_partial_local:,`
# (one per image) for the locally connected layer. But the total number of partial products
# is the same for both, because the FLOPs are the same: sharing does not add work, it
# changes the shape of the weight-gradient matrix product so that each output sums a longer
# row. That sum runs inside the product, in registers and cache, and it is what gives the
# convolution's weight-gradient pass its high intensity. Measured alone, that pass took
# {glue:text}`base_wgrad_ms_conv:.2f` ms for the convolution and
# {glue:text}`base_wgrad_ms_local:.2f` ms for the locally connected layer at the base
# layer; across the sweep the convolution's was the slower at
# {glue:text}`conv_wgrad_slower_points` of {glue:text}`n_points` points.
#
# ```{glue:figure} fig-sharing-roofline
# :name: fig-sharing-roofline
#
# This device's roofline from its measured main-memory bandwidth and matmul throughput,
# with every sweep point's training step placed from its counted FLOPs, fewest bytes and
# measured time. Hover for the layer's shape.
# ```
#
# On the roofline ({numref}`fig-sharing-roofline`; ridge point at
# {glue:text}`ridge_flop_per_byte:.1f` FLOPs per byte) the convolutions sit at
# {glue:text}`intensity_conv_min:.0f` to {glue:text}`intensity_conv_max:.0f` FLOPs per
# byte and the locally connected steps at {glue:text}`intensity_local_min:.1f` to
# {glue:text}`intensity_local_max:.1f`: {glue:text}`local_memory_bound_points` of
# {glue:text}`n_points` locally connected steps are left of the ridge, against
# {glue:text}`conv_memory_bound_points` convolutions. The locally connected layer reaches
# {glue:text}`local_fraction_median_pct:.0f`% of the attainable throughput at its
# intensity (median over points), the convolution {glue:text}`conv_fraction_median_pct:.0f`%.
# {glue:text}`above_roof_note` The fewest bytes do not tell the whole story of the locally
# connected layer's time, which also depends on how it is computed. {glue:text}`lc_impl`
# A better kernel can narrow the measured time gap; it cannot remove the bytes gap, because
# every position's weights must still be read and their gradients written.

# %% tags=["hide-input"]
comm = ch.communication(base, workers)
comm_numbers = ch.comm_numbers(comm)
results.glue_all(comm_numbers)
glue("workers", workers, display=False)
glue("conclusion", ch.conclusion(pairs), display=False)
glue("fig-sharing-comm", charts.figure(
    ch.comm_chart(comm, f"Bytes between {workers} workers per step, base layer"),
    "sharing-comm"), display=False)

# %% [markdown]
# ## Between workers, and in the brain
#
# ```{glue:figure} fig-sharing-comm
# :name: fig-sharing-comm
#
# Bytes sent between workers in one training step of the base layer, counted (not run):
# data parallel (each worker holds the whole layer and a share of the batch, and the weight
# gradients are all-reduced with a ring) and spatial (each worker holds a tile of the
# feature map and exchanges the halo its kernel needs, forward and backward; only the
# convolution must also all-reduce its shared weights' gradients).
# ```
#
# Where the essay's point does stand is between processors. With the layer split by
# position over {glue:text}`workers` workers, the locally connected layer only exchanges
# halos ({glue:text}`spatial_local_kb:,.1f` kB per step), while the convolution must also
# sum its weight gradients across workers ({glue:text}`spatial_conv_kb:,.1f` kB in all),
# because every worker computed a part of every shared weight's gradient
# ({numref}`fig-sharing-comm`). Under data parallelism, the usual way to train on many
# GPUs, the opposite holds: the all-reduce carries every weight, so the locally connected
# layer sends {glue:text}`dp_local_kb:,.0f` kB against the convolution's
# {glue:text}`dp_conv_kb:,.1f` kB. Bartunov et al. {cite}`bartunov_2018` make the same
# point: sharing shrinks both the memory for parameters and the traffic between replicas.
#
# In cortex, weights are physically local to the synapses that use them, and there is no
# known mechanism for averaging one synapse's update over every position of the visual
# field; dynamic weight sharing (Pogodin et al. {cite}`pogodin_2021`) is one proposal for
# how a locally connected network might approximate it. {glue:text}`conclusion`

# %% tags=["hide-input"]
verdict, shares = ch.verdict(pairs, energy_measured)
why = ch.explain(verdict, shares, pairs)
glue("verdict", verdict, display=False)
glue("why", why, display=False)
glue("majority_pct", 100 * ch.MAJORITY, display=False)

numbers = {
    **{k: v for k, v in shown.items() if k in ch.COUNTED_KEYS},
    **comm_numbers,
    "conv_moves_more_share": ch.conv_costs_more_share(pairs, "min_bytes"),
    "points": ch.counted_points(table),
}
measurements = {
    **{k: v for k, v in shown.items() if k not in ch.COUNTED_KEYS},
    "shares_conv_costs_more": shares,
    "roofline": roof.as_dict(),
    "points": ch.measured_points(table),
}

# %% [markdown]
# ## Verdict
#
# :::{admonition} Verdict: {glue:text}`verdict`
# :class: important
#
# {glue:text}`why`
# :::
#
# The rule is fixed in the chapter's code before the run: for each measure (the fewest
# bytes a step must move, the measured step time, and measured energy where there is a
# counter) we count the sweep points where the convolution costs more than the locally
# connected layer. A measure sides with the essay when that happens at
# {glue:text}`majority_pct:.0f`% of the points or more; the claim is supported if every
# measure sides with it, not supported if none does, and mixed otherwise. The verdict is
# about one layer on one device: the communication between workers above, where sharing
# does cost traffic under a spatial split, is counted rather than measured, and chapter 4
# measures it.

# %% tags=["hide-input"]
rec = results.record(
    verdict_basis="measurements",  # the verdict uses measured times
    claim="Tied weights force a layer to move much more data than untied ones.",
    verdict=verdict,
    numbers=numbers,
    why=why,
    measurements=measurements,
    params=results.parameters(globals(), "sharing_moves"),
    device=info,
    seed=seed,
)
