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
# # Where the energy goes
#
# **The claim.** The essay {cite}`rinkus_essay` starts from two premises: a computer spends
# most of its energy carrying data between memory and the processors rather than doing
# arithmetic on it, and a brain does what it does on roughly {glue:text}`brain_w:.0f` W
# {cite}`levy_calvert_2021`. If both hold, any model
# whose computation needs a lot of data movement will struggle to approach the brain's
# efficiency. This chapter tests the first premise on the machine that ran it.
#
# **The experiment.** We measure this device's memory bandwidth across working sets, from
# sizes that fit in the first-level cache to sizes that only fit in main memory, and its
# arithmetic throughput on a large fp32 matrix product. The two ceilings give the
# *roofline* (Williams et al.): a kernel that does few FLOPs per byte it moves is limited by
# bandwidth, one that does many by arithmetic. We then take the energy of one byte moved
# and of one FLOP: measured with a hardware counter where the device has one (NVML on
# NVIDIA GPUs, RAPL on some CPUs), otherwise **modelled** from Horowitz's 45 nm table
# {cite}`horowitz_2014` and saying so. Finally we place the layers of a typical network
# (ResNet-18's convolutions and the batch norm + ReLU after each) on the roofline from
# their measured times, and split a training step's energy into arithmetic and data
# movement. Transfers between a host CPU and a GPU, which the essay also names, are not
# measured here.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for the tensors the layers are timed on
working_sets_kib = [16, 64, 256, 1024, 4096, 16384, 65536, 262144]  # working sets of the bandwidth sweep (KiB) [range: 1..]
bandwidth_kernel = "copy"  # kernel of the bandwidth sweep, STREAM-like [choices: copy | triad | read]
matmul_n = 2048  # side of the square fp32 matmul that measures peak throughput (elements) [range: 64..]
min_run_time_s = 0.2  # measured time per timing point (s) [range: >0]
image_size = 224  # side of the ResNet-18 input whose layers go on the roofline (pixels) [range: 64..]
batch_size = 8  # images per ResNet-18 training step [range: 1..]
energy_window_s = 2.0  # length of each energy-counter window, used only where a counter exists (s) [range: >0]
allow_tf32 = False  # let CUDA matmuls and convolutions use TensorFloat-32 (ignored on CPU)
threads = 1  # torch intra-op CPU threads while measuring; 0 keeps torch's default [range: 0..]

# %% tags=["hide-input"]
import torch
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import energy as ch
from gardenpath.measure.device import describe, prepare

charts.enable()
dev = prepare(device, threads=threads, allow_tf32=allow_tf32)
torch.manual_seed(seed)
info = describe(dev)
device_name = f"{info.get('name') or dev.type} ({dev})"
profile = results.profile_name()

roof = ch.measure_ceilings(dev, working_sets_kib, matmul_n, bandwidth_kernel, min_run_time_s)
caches = ch.cache_levels(dev)
fastest = max(p.bytes_per_s for p in roof.bandwidth)
ceilings = {
    "main_memory_gb_per_s": roof.peak_bytes_per_s / 1e9,
    "fastest_gb_per_s": fastest / 1e9,
    "cache_over_memory": fastest / roof.peak_bytes_per_s,
    "peak_gflops_per_s": roof.peak_flops_per_s / 1e9,
    "ridge_flop_per_byte": roof.ridge_intensity,
    "ridge_flop_per_operand": ch.BYTES_PER_OPERAND * roof.ridge_intensity,
}
glue("device_name", device_name, display=False)
glue("largest_ws_mib", max(working_sets_kib) / 1024, display=False)
glue("largest_ws_level", ch.largest_set_level(working_sets_kib, caches), display=False)
results.glue_all(ceilings)
glue("fig-energy-bandwidth", charts.figure(
    ch.bandwidth_chart(roof, caches, f"Bandwidth by working set: {device_name}"),
    "energy-bandwidth"), display=False)

# %% [markdown]
# ## The device's two ceilings
#
# ```{glue:figure} fig-energy-bandwidth
# :name: fig-energy-bandwidth
#
# Achieved bandwidth of a STREAM-like kernel against its working set (the bytes of all
# arrays it touches), measured on this device; dashed lines mark the cache sizes the system
# reports. Bytes counted are reads plus writes. Small working sets include PyTorch's
# per-call overhead, so they understate the cache's bandwidth.
# ```
#
# {numref}`fig-energy-bandwidth` shows the memory hierarchy of {glue:text}`device_name`.
# The largest working set ({glue:text}`largest_ws_mib:,.0f` MiB, held in
# {glue:text}`largest_ws_level`) streams at {glue:text}`main_memory_gb_per_s:.1f` GB/s;
# this is the memory roof below. The fastest working set reached
# {glue:text}`fastest_gb_per_s:.1f` GB/s, {glue:text}`cache_over_memory:.1f` times more.
# The fp32 matrix product ran at {glue:text}`peak_gflops_per_s:,.1f` GFLOP/s.
#
# **The time view.** Dividing one ceiling by the other gives the ridge point of the
# roofline: in the time one byte arrives from {glue:text}`largest_ws_level` this device can do
# {glue:text}`ridge_flop_per_byte:.1f` FLOPs, or {glue:text}`ridge_flop_per_operand:.1f`
# FLOPs per 32-bit operand. A kernel that does fewer FLOPs than that per byte it must
# fetch waits on memory, however fast its arithmetic.

# %% tags=["hide-input"]
op_energy = ch.measure_op_energy(dev, max(working_sets_kib) * 1024, matmul_n, energy_window_s)
modelled = ch.modelled_op_energy()
published = ch.published_numbers()
energy_shown = {
    "energy_method": op_energy.method,
    "pj_per_byte": op_energy.pj_per_byte,
    "pj_per_flop": op_energy.pj_per_flop,
    "pj_per_operand": ch.BYTES_PER_OPERAND * op_energy.pj_per_byte,
    "operand_ratio": op_energy.operand_ratio,
    "energy_note": ch.energy_note(op_energy),
}
results.glue_all(energy_shown)
results.glue_all(published)
glue("operand_ratio_threshold", ch.OPERAND_RATIO_THRESHOLD, display=False)
ladder_title = ("Energy per access relative to a multiply-accumulate (this device: "
                + ("measured" if op_energy.measured else "modelled, Horowitz 45 nm") + ")")
glue("fig-energy-ladder", charts.figure(ch.ladder_chart(op_energy, ladder_title),
                                        "energy-ladder"), display=False)

# %% [markdown]
# ## Energy per byte and per FLOP
#
# Where the device has an energy counter we read it over three windows of equal length:
# the device idle, a main-memory-sized copy repeated, and the fp32 matmul repeated. The
# energy per byte is the copy's energy above idle power divided by the bytes it read and
# wrote; the energy per FLOP is the matmul's above idle divided by its FLOPs, which still
# includes moving its operands through caches and registers, so it overstates arithmetic
# alone. Where there is no counter the figures are **modelled**: counted bytes and FLOPs
# times Horowitz's 45 nm costs ({glue:text}`horowitz_dram_32b_pj:.0f` pJ per 32-bit DRAM
# access, {glue:text}`horowitz_fp_add_32b_pj:.1f` + {glue:text}`horowitz_fp_mult_32b_pj:.1f`
# pJ per fp32 add and multiply). A model says nothing about this machine's own chip; it says what the
# published table implies for the bytes and FLOPs of this device's workloads. In this run:
# {glue:text}`energy_note`.
#
# On this device a byte from main memory costs {glue:text}`pj_per_byte:.3g` pJ and an fp32
# FLOP {glue:text}`pj_per_flop:.3g` pJ ({glue:text}`energy_method`). Fetching one 32-bit
# operand ({glue:text}`pj_per_operand:.3g` pJ) therefore costs as much energy as
# {glue:text}`operand_ratio:.0f` FLOPs.
#
# ```{glue:figure} fig-energy-ladder
# :name: fig-energy-ladder
#
# Energy of one access at each level of the memory hierarchy, divided by the energy of one
# multiply-accumulate (log scale). Horowitz's 45 nm figures {cite}`horowitz_2014` (32-bit
# register file, SRAM and DRAM rows as tabulated by Han et al. {cite}`han_2015`) and Sze et
# al.'s normalised costs for the Eyeriss accelerator at 65 nm {cite}`sze_2017` are
# published numbers; the bars for this device are measured with an energy counter or, where
# there is none, modelled from Horowitz's table, as the legend says.
# ```
#
# Beside this device in {numref}`fig-energy-ladder` are the published numbers: in Horowitz's table a
# 32-bit DRAM access costs {glue:text}`horowitz_dram_32b_pj:.0f` pJ and a 32-bit float
# multiply {glue:text}`horowitz_fp_mult_32b_pj:.1f` pJ, a ratio of
# {glue:text}`horowitz_dram_over_fp_mult:.0f`; in Sze et al.'s accelerator a DRAM access
# costs {glue:text}`sze_dram:.0f` multiply-accumulates and even a read from the on-chip
# global buffer costs {glue:text}`sze_buffer:.0f`. These are per-access figures for
# particular chips (45 nm and 65 nm), not this device.
#
# **The brain.** Levy and Calvert {cite}`levy_calvert_2021` estimate that of the brain's
# roughly {glue:text}`brain_w:.0f` W, cortical computation uses about
# {glue:text}`brain_computation_w:.1f` W of ATP and communication (action potentials along
# axons, synaptic transmission) about {glue:text}`brain_communication_w:.1f` W, a ratio of
# {glue:text}`brain_communication_over_computation:.0f`. That ratio compares two power
# budgets of an organ, not the cost of one access and one operation, so it sits beside our
# figures as a parallel, not as a like-for-like comparison: in cortex too, moving signals
# costs more than computing with them.

# %% tags=["hide-input"]
ops = ch.resnet18_ops(image_size, batch_size)
op_times = ch.time_ops(ops, dev, min_run_time_s, seed)
table = ch.op_table(ops, op_times, roof)
mem_share = ch.memory_bound_time_share(table)
step_model = ch.step_energy(ops, modelled)
step_used = ch.step_energy(ops, op_energy)
layers_total = sum(op.count for op in ops)
layers_memory = int(table.loc[table["bound"] == "memory", "count"].sum())
conv_rows = table[table["kind"] == "conv"]
step_shown = {
    "image_size": image_size,
    "batch_size": batch_size,
    "layers_total": layers_total,
    "layers_memory_bound": layers_memory,
    "conv_intensity_min": float(conv_rows["intensity"].min()),
    "conv_intensity_max": float(conv_rows["intensity"].max()),
    "bn_intensity": ch.BN_RELU_FLOPS_PER_ELEMENT / (ch.BN_RELU_TENSORS * 4),
    "memory_bound_time_share_pct": 100 * mem_share,
    "step_time_s": float(table["step_time_s"].sum()),
    "step_gflop": step_model["flops"] / 1e9,
    "step_gb": step_model["bytes"] / 1e9,
    "movement_share_pct": 100 * step_used["movement_share"],
    "movement_j": step_used["movement_j"],
    "arithmetic_j": step_used["arithmetic_j"],
    "movement_share_threshold_pct": 100 * ch.MOVEMENT_SHARE_THRESHOLD,
    "time_share_threshold_pct": 100 * ch.MEMORY_BOUND_TIME_SHARE_THRESHOLD,
}
results.glue_all(step_shown)
glue("above_roof_note", ch.above_roof_note(table), display=False)
glue("fig-energy-roofline", charts.figure(
    ch.roofline_chart(roof, table, f"Roofline with ResNet-18 layers, batch {batch_size}: "
                      f"{device_name}", ch.largest_set_level(working_sets_kib, caches)),
    "energy-roofline"), display=False)
kind_word = "measured" if op_energy.measured else "modelled (Horowitz 45 nm)"
glue("fig-energy-step", charts.figure(
    ch.stage_chart(ch.stage_energy(ops, op_energy),
                   f"Energy of one ResNet-18 training step, {kind_word}"),
    "energy-step"), display=False)

# %% [markdown]
# ## Typical layers on the roofline
#
# ```{glue:figure} fig-energy-roofline
# :name: fig-energy-roofline
#
# The roofline of this device from its measured ceilings (solid: the largest working set's
# bandwidth, main memory unless the legend names a cache;
# dashed: the fastest bandwidth measured, from cache), the ridge point (dotted), and every
# distinct layer of a ResNet-18 training step (forward and backward) placed from its counted
# FLOPs, the fewest bytes it must move, and its measured time. Hover for names and times.
# ```
#
# A ResNet-18 step on {glue:text}`image_size` × {glue:text}`image_size` images in batches of
# {glue:text}`batch_size` has {glue:text}`layers_total` convolution and batch norm layers;
# it does {glue:text}`step_gflop:,.1f` GFLOP and must move at least
# {glue:text}`step_gb:.2f` GB. The convolutions do between
# {glue:text}`conv_intensity_min:.0f` and {glue:text}`conv_intensity_max:.0f` FLOPs per byte
# they must move; batch norm + ReLU does {glue:text}`bn_intensity:.1f`.
# {numref}`fig-energy-roofline` shows that {glue:text}`layers_memory_bound` of the
# {glue:text}`layers_total` layers sit left of the ridge point, and they take
# {glue:text}`memory_bound_time_share_pct:.0f`% of the step's measured time
# ({glue:text}`step_time_s:.2f` s). The minimum-bytes count is a lower bound: a real kernel
# re-reads what does not fit in cache, so the points sit further left in practice than
# drawn. {glue:text}`above_roof_note`
#
# ```{glue:figure} fig-energy-step
# :name: fig-energy-step
#
# One ResNet-18 training step's energy by stage and layer kind: arithmetic (counted FLOPs
# times the energy per FLOP) and data movement (the fewest bytes times the energy per
# byte), with the per-FLOP and per-byte energies of the section above (measured where a
# counter exists, else modelled from Horowitz's 45 nm table, as the title says).
# ```
#
# Moving the fewest bytes the layers must move takes
# {glue:text}`movement_share_pct:.0f`% of the step's energy in {numref}`fig-energy-step`
# ({glue:text}`movement_j:.3g` J for data movement against {glue:text}`arithmetic_j:.3g` J
# for arithmetic). This count leaves out all on-chip movement (registers, caches), which in
# Sze et al.'s accelerator costs {glue:text}`sze_register_file:.0f` to
# {glue:text}`sze_buffer:.0f` MACs per access, so it understates movement's
# share.

# %% tags=["hide-input"]
verdict, tests = ch.verdict(op_energy.operand_ratio, step_used["movement_share"], mem_share)
why = ch.explain(verdict, tests, op_energy, step_used["movement_share"], mem_share)
glue("verdict", verdict, display=False)
glue("why", why, display=False)

numbers = {
    **published,
    "model_pj_per_byte": modelled.pj_per_byte,
    "model_pj_per_flop": modelled.pj_per_flop,
    "model_operand_ratio": modelled.operand_ratio,
    "step_flops": step_model["flops"],
    "step_bytes": step_model["bytes"],
    "model_step_arithmetic_j": step_model["arithmetic_j"],
    "model_step_movement_j": step_model["movement_j"],
    "model_step_movement_share": step_model["movement_share"],
    "layers_total": layers_total,
    "distinct_layers": len(ops),
    "operand_ratio_threshold": ch.OPERAND_RATIO_THRESHOLD,
    "movement_share_threshold": ch.MOVEMENT_SHARE_THRESHOLD,
    "memory_bound_time_share_threshold": ch.MEMORY_BOUND_TIME_SHARE_THRESHOLD,
}
measurements = {
    **ceilings,
    "energy": op_energy.as_dict(),
    "operand_ratio": op_energy.operand_ratio,
    "step_movement_share": step_used["movement_share"],
    "memory_bound_time_share": mem_share,
    "layers_memory_bound": layers_memory,
    "step_time_s": float(table["step_time_s"].sum()),
    "tests": tests,
    "roofline": roof.as_dict(),
    "layers": table.to_dict(orient="records"),
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
# The three tests and their thresholds are fixed in the chapter's code before any data is
# seen: a 32-bit operand from main memory must cost at least
# {glue:text}`operand_ratio_threshold:.0f` FLOPs' energy; data movement must take at least
# {glue:text}`movement_share_threshold_pct:.0f`% of a ResNet-18 step's energy; and layers
# left of the ridge point must take at least {glue:text}`time_share_threshold_pct:.0f`% of
# its time. The claim is supported only if all three hold, not supported if the first
# fails, and mixed otherwise. The per-operand ratio does not depend on the workload; the
# other two do, so try a smaller `batch_size` (less reuse of each weight) or another
# device.

# %% tags=["hide-input"]
rec = results.record(
    verdict_basis="measurements",  # the verdict uses measured times
    claim="Moving data, not arithmetic, costs most of a computer's energy.",
    verdict=verdict,
    numbers=numbers,
    why=why,
    measurements=measurements,
    params=results.parameters(globals(), "energy"),
    device=info,
    seed=seed,
)
