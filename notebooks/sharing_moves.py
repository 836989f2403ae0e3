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
#     runs_alone: true
# ---

# %% [markdown]
# # What sharing moves
#
# **The claim.** {glue:text}`claim` The essay {cite}`rinkus_essay` argues that tying
# parameters, as a convolutional network does, makes the computation data-hungry: every
# shared weight's gradient has to be gathered from all the positions the weight was used
# at, and gathering is data movement, which is what costs energy (see the previous
# chapter). A layer without sharing, whose weights are local to each position as synapses
# are local to each neuron, would avoid it.
#
# **The experiment.** We put the two kinds of layer side by side with identical shapes: a
# convolution (`torch.nn.Conv2d`) and a locally connected layer (our `LocallyConnected2d`:
# the same filters, but a separate copy at every output position, as in the locally
# connected networks of Gregor and LeCun {cite}`gregor_lecun_2010` and DeepFace
# {cite}`taigman_2014`), stride 1, "same" padding, no bias, as many output channels as
# input channels. We vary one factor at a time around a base layer (spatial side,
# channels, kernel, batch) and look at one training step (forward, input gradient, weight
# gradient) on two machines. The first is the **von Neumann** machine that ran this page:
# a processor that fetches weights and activations from memory, where we count bytes and
# measure time. The second is the machine the essay has in mind, a **spatial** one: a
# two-dimensional mesh of processing elements, one per output position (or per tile of
# positions), each holding its own weights, where we count the bytes carried between
# elements times the links they cross.

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
timing_rounds = 5  # interleaved timing rounds of the base layer's two steps, for the time test [range: 2..]
roofline_ws_mib = 256  # working set of the main-memory bandwidth measurement (MiB) [range: 1..]
matmul_n = 2048  # side of the square fp32 matmul that measures peak throughput (elements) [range: 64..]
energy_window_s = 1.0  # length of each energy-counter window, used only where a counter exists (s) [range: >0]
mesh_tile = 1  # output positions per processing element along each side of the mesh [range: 1..]
mesh_reduction = "tree"  # how the mesh sums the shared weights' gradient and returns it [choices: tree | ring]
time_ratio_threshold = 1.0  # von Neumann test: the claim holds when conv / locally connected step time is at least this [range: >0]
much_more_factor = 2.0  # mesh test: the claim holds when conv / locally connected bytes x hops is at least this ("much more") [range: >0]
allow_tf32 = False  # let CUDA matmuls and convolutions use TensorFloat-32 (ignored on CPU)
threads = 1  # torch intra-op CPU threads while measuring; 0 keeps torch's default [range: 0..]

# %% tags=["hide-input"]
import torch
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import sharing_moves as ch
from gardenpath.measure.device import describe, prepare
from gardenpath.models import lc_native

charts.enable()
params = results.parameters(globals(), "sharing_moves")
dev = prepare(device, threads=threads, allow_tf32=allow_tf32)
result = ch.run(params, dev)

# %% tags=["hide-input"]
decision = ch.decide(result)
info = describe(dev)
pairs, table, roof = result.pairs, result.table, result.roof
base = ch.base_point(params)
shown = {**ch.base_numbers(pairs, base), **ch.sweep_numbers(pairs, table)}
machines = ch.machine_numbers(result)
times = result.base_times_s
numbers = {**{k: v for k, v in shown.items() if k in ch.COUNTED_KEYS}, **machines,
           "points": ch.counted_points(table),
           "machines": result.machines.to_dict(orient="records")}
measurements = {**{k: v for k, v in shown.items() if k not in ch.COUNTED_KEYS},
                "base_times_s": times,
                "time_ratio_base": sum(times["conv"]) / sum(times["local"]),
                "roofline": roof.as_dict(), "points": ch.measured_points(table)}
rec = results.record(ch.CLAIM, decision, numbers, measurements=measurements, params=params,
                     device=info, seed=seed, verdict_basis="measurements")
device_name = f"{info.get('name') or dev.type} ({dev})"
results.glue_all({**shown, **machines, "claim": ch.CLAIM, "device_name": device_name,
                  "lc_impl": lc_native.describe(dev), "energy_method": result.energy_method,
                  "torch_threads": torch.get_num_threads(),
                  "time_ratio_base": measurements["time_ratio_base"],
                  "timing_rounds": timing_rounds, "much_more_factor": much_more_factor,
                  "mesh_tile": mesh_tile, "mesh_reduction": mesh_reduction,
                  "ridge_flop_per_byte": roof.ridge_intensity})
results.glue_verdict(decision, ch.CLAIM)

# %% tags=["hide-input"]
energy_word = ("measured" if result.energy_method.startswith("measured")
               else "modelled, Horowitz 45 nm")
glue("fig-sharing-ratios", charts.figure(
    ch.ratio_chart(ch.knob_rows(pairs, result.members, energy_word),
                   f"Locally connected against convolution, one factor at a time: "
                   f"{device_name}"), "sharing-ratios"), display=False)
glue("fig-sharing-tradeoff", charts.figure(
    ch.tradeoff_chart(ch.tradeoff_rows(table, result.members),
                      "What sharing trades: weights against the length of each gradient's sum"),
    "sharing-tradeoff"), display=False)
glue("fig-sharing-roofline", charts.figure(
    ch.roofline_chart(roof, table, f"Every measured training step on the roofline: "
                      f"{device_name}"), "sharing-roofline"), display=False)

# %% [markdown]
# ## On a von Neumann machine: same arithmetic, more bytes without sharing
#
# At the base layer ({glue:text}`base_in_size` × {glue:text}`base_in_size` input,
# {glue:text}`base_channels` channels, {glue:text}`base_kernel_size` ×
# {glue:text}`base_kernel_size` kernel, batch {glue:text}`base_batch_size`), both layers
# do the same {glue:text}`base_mflops:,.1f` MFLOP per training step, counted by PyTorch's
# FLOP counter ({glue:text}`flops_equal_points` of {glue:text}`n_points` sweep points have
# identical counts). What differs is the weights: the convolution has
# {glue:text}`base_params_conv:,` and the locally connected layer
# {glue:text}`base_params_local:,`, one filter bank for each of the
# {glue:text}`base_positions:,` output positions. A processor that fetches them from
# memory must move {glue:text}`base_bytes_ratio:.1f` times the bytes for the locally
# connected step ({glue:text}`base_mb_local:.2f` MB against
# {glue:text}`base_mb_conv:.2f` MB), and across the sweep the convolution moves
# {glue:text}`vn_conv_over_lc_bytes_min:.3f` to {glue:text}`vn_conv_over_lc_bytes_max:.2f`
# times the locally connected layer's bytes: never more, since the weights are the only
# tensor that differs. On this machine, the fewest-bytes count cannot side with the
# essay, so it stands beside the verdict as a fact.
#
# ```{glue:figure} fig-sharing-ratios
# :name: fig-sharing-ratios
#
# Locally connected layer over convolution for each quantity (log scale; above the dashed
# line the locally connected layer costs more), varying one factor at a time around the
# base layer. Weights and fewest bytes are counted; step time, weight-gradient time and
# peak memory are measured on this machine; energy is measured where a counter exists and
# otherwise modelled with Horowitz's 45 nm table, as the legend says.
# ```
#
# Time can go either way: it depends on how well each layer's kernels use the machine.
# Measured on {glue:text}`device_name` with {glue:text}`torch_threads` CPU thread(s), the
# locally connected step took {glue:text}`time_ratio_min:.1f` to
# {glue:text}`time_ratio_max:.1f` times the convolution's across the sweep
# ({numref}`fig-sharing-ratios`); at the base layer, over {glue:text}`timing_rounds`
# interleaved rounds, the convolution's step took {glue:text}`time_ratio_base:.2f` times the
# locally connected one's ({glue:text}`base_ms_conv:.2f` ms against
# {glue:text}`base_ms_local:.2f` ms in the sweep's single timing). {glue:text}`lc_impl`
#
# ```{glue:figure} fig-sharing-tradeoff
# :name: fig-sharing-tradeoff
#
# Along the spatial sweep: the number of weights (left) and the number of partial products
# summed into each weight's gradient (right), for the two layers. Counted from the shapes.
# ```
#
# The essay's mechanism is real ({numref}`fig-sharing-tradeoff`): each of the
# convolution's weights sums {glue:text}`base_partial_conv:,` partial products into its
# gradient (one per image and position), against {glue:text}`base_partial_local:,` for
# the locally connected layer. But the FLOPs are equal: on a von Neumann machine that sum
# runs inside a matrix product, in registers and cache, and gives the convolution's
# weight-gradient pass its high arithmetic intensity.
#
# ```{glue:figure} fig-sharing-roofline
# :name: fig-sharing-roofline
#
# This machine's roofline from its measured main-memory bandwidth and matmul throughput,
# with every sweep point's training step placed from its counted FLOPs, fewest bytes and
# measured time.
# ```
#
# On the roofline ({numref}`fig-sharing-roofline`; ridge at
# {glue:text}`ridge_flop_per_byte:.1f` FLOPs per byte) the convolutions sit at
# {glue:text}`intensity_conv_min:.0f` to {glue:text}`intensity_conv_max:.0f` FLOPs per byte
# and the locally connected steps at {glue:text}`intensity_local_min:.1f` to
# {glue:text}`intensity_local_max:.1f`. {glue:text}`above_roof_note`

# %% tags=["hide-input"]
glue("fig-sharing-machines", charts.figure(
    ch.machines_chart(ch.machines_chart_rows(result.machines, result.members),
                      much_more_factor,
                      "Convolution over locally connected: traffic on two machines"),
    "sharing-machines"), display=False)

# %% [markdown]
# ## On a machine whose weights stay in place
#
# On the mesh every processing element holds the weights of its
# {glue:text}`mesh_tile` × {glue:text}`mesh_tile` output positions and computes them; at the
# base layer that is {glue:text}`mesh_pes_base:,` elements. Both layers must carry the
# *halo*, the input pixels a kernel window needs from neighbouring elements, forward, and
# the input gradient's partial sums back: {glue:text}`mesh_halo_mb_hops_base:,.2f` MB × hops
# a step at the base layer. Untied weights never move. A tied weight has one value for all
# positions, so after every step its gradient must be summed from every element and the new
# value sent back to all of them ({glue:text}`mesh_reduction` reduction): another
# {glue:text}`mesh_sync_mb_hops_base:,.2f` MB × hops. The convolution therefore carries
# {glue:text}`mesh_conv_over_lc_base:.2f` times the locally connected layer's bytes × hops
# at the base layer ({glue:text}`mesh_conv_over_lc_base_other:.2f` with a
# {glue:text}`mesh_other_reduction` instead), and between
# {glue:text}`mesh_conv_over_lc_min:.2f` and {glue:text}`mesh_conv_over_lc_max:,.1f` times
# across the sweep.
#
# ```{glue:figure} fig-sharing-machines
# :name: fig-sharing-machines
#
# The convolution's traffic over the locally connected layer's, one factor at a time:
# fewest bytes on the von Neumann machine and bytes × hops on the mesh (counted, not run).
# Below the solid line the convolution moves less; the dashed line is the "much more"
# factor of the mesh test. Points where the locally connected layer moves nothing on the
# mesh (a 1 × 1 kernel needs no halo) are left out: the ratio is infinite there.
# ```
#
# The two machines disagree, and {numref}`fig-sharing-machines` shows why. Fetching weights
# from memory punishes the layer with more of them; keeping weights in place punishes the
# layer whose weights must agree. On the mesh the halo grows with the batch and the channels
# in, while the weight traffic grows with the channels in and out and the number of
# elements but not with the batch, so the ratio is largest for wide layers trained on few
# images at a time. {glue:text}`mesh_points_past_factor` of the {glue:text}`n_points` sweep
# points reach the factor of {glue:text}`much_more_factor:.3g`;
# {glue:text}`mesh_silent_points` are 1 × 1 kernels, where only the convolution moves
# anything. In cortex, weights are physically local to the synapses that use them; dynamic
# weight sharing (Pogodin et al. {cite}`pogodin_2021`) is one proposal for how a locally
# connected network might approximate sharing, at the price of exactly this kind of traffic.
# Bartunov et al. {cite}`bartunov_2018` make the von Neumann side's point: sharing shrinks
# the memory for parameters and the traffic between replicas.

# %% [markdown]
# ## The verdict
#
# :::{admonition} Verdict
# :class: important
#
# ```{glue:md} verdict_box
# :format: myst
# ```
# :::
#
# The thresholds are parameters fixed before the run. The time test is a measurement of
# one layer on one device and turns with the kernels and the hardware; the mesh test is a
# count over a sweep whose range turns with the batch, the channels and the tile of
# positions each element holds. The traffic between separate workers, which these counts
# do not run, is measured in the chapter on machine parallelism.
