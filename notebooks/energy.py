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
# # Where the energy goes
#
# **The claim.** {glue:text}`claim` The essay {cite}`rinkus_essay` builds on this premise
# and on a second one, that a brain does what it does on roughly
# {glue:text}`brain_w:.0f` W {cite}`levy_calvert_2021`, orders of magnitude more
# efficiently than a computer. This chapter tests the first premise on a typical workload,
# a ResNet-18 training step, and sets the second beside it as published figures.
#
# **The experiment.** We count what one training step does: its multiply-accumulates
# (MACs), its element-wise operations, and its accesses to each level of a memory hierarchy
# (register file, on-chip buffer, DRAM), under a named *dataflow*, the rule of which
# operand stays in the register file in Eyeriss-like accelerators {cite}`sze_2017`. We price
# the counts with two published tables: Horowitz's 45 nm figures {cite}`horowitz_2014`, with
# the 32-bit register-file, SRAM and DRAM rows as tabulated by Han et al.
# {cite}`han_2015`, and Sze et al.'s figures for Eyeriss at 65 nm, normalised to one MAC.
# The energies are **modelled with these tables**, not measured on this machine. Movement's
# share is a range: its low end counts only DRAM, each tensor moved once (no on-chip
# movement at all); its high end adds every register-file and buffer access the dataflow
# needs. We also measure this machine's memory bandwidth and arithmetic throughput and time
# every layer, to show where the step spends its *time*; time does not vote on a claim
# about energy.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for the tensors the layers are timed on
working_sets_kib = [16, 64, 256, 1024, 4096, 16384, 65536, 262144]  # working sets of the bandwidth sweep (KiB) [range: 1..]
bandwidth_kernel = "copy"  # kernel of the bandwidth sweep, STREAM-like [choices: copy | triad | read]
matmul_n = 2048  # side of the square fp32 matmul that measures peak throughput (elements) [range: 64..]
min_run_time_s = 0.2  # measured time per timing point (s) [range: >0]
image_size = 224  # side of the ResNet-18 input whose step is modelled and timed (pixels) [range: 64..]
batch_size = 8  # images per ResNet-18 training step [range: 1..]
dataflow = "row_stationary"  # which operand stays in the register file [choices: weight_stationary | output_stationary | row_stationary]
movement_share_threshold = 0.5  # the claim holds when movement's share range lies at or above this (fraction) [range: 0..1]
energy_window_s = 2.0  # length of each energy-counter window, used only where a counter exists (s) [range: >0]
allow_tf32 = False  # let CUDA matmuls and convolutions use TensorFloat-32 (ignored on CPU)
threads = 1  # torch intra-op CPU threads while measuring; 0 keeps torch's default [range: 0..]

# %% tags=["hide-input"]
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import energy as ch
from gardenpath.measure.device import describe, prepare

charts.enable()
params = results.parameters(globals(), "energy")
dev = prepare(device, threads=threads, allow_tf32=allow_tf32)
result = ch.run(params, dev)

# %% tags=["hide-input"]
decision = ch.decide(result)
published = ch.published_numbers()
numbers = {**published, **result.numbers,
           "layers_total": sum(op.count for op in result.ops),
           "distinct_layers": len(result.ops)}
measurements = {**result.measurements, "roofline": result.roof.as_dict(),
                "layers": result.table.to_dict(orient="records")}
rec = results.record(ch.CLAIM, decision, numbers, measurements=measurements, params=params,
                     device=describe(dev), seed=seed)
table = result.table
conv_rows = table[table["kind"] == "conv"]
shown = {
    "claim": ch.CLAIM,
    "device_name": result.device_name,
    "largest_ws_mib": max(working_sets_kib) / 1024,
    "largest_ws_level": ch.largest_set_level(working_sets_kib, result.caches),
    "energy_note": ch.energy_note(result.op_energy),
    "above_roof_note": ch.above_roof_note(table),
    "image_size": image_size,
    "batch_size": batch_size,
    "dataflow_name": dataflow.replace("_", "-"),
    "movement_share_low_pct": 100 * numbers["movement_share_low"],
    "movement_share_high_pct": 100 * numbers["movement_share_high"],
    "sze_movement_share_low_pct": 100 * numbers["sze_movement_share_low"],
    "sze_movement_share_high_pct": 100 * numbers["sze_movement_share_high"],
    "step_gflop": numbers["step_flops"] / 1e9,
    "step_dram_gb": numbers["step_dram_bytes"] / 1e9,
    "machine_pj_per_flop": numbers["machine_j_per_flop"] * 1e12,
    "machine_pj_per_flop_dram_only": numbers["machine_j_per_flop_dram_only"] * 1e12,
    "brain_fj_per_event": numbers["brain_j_per_synaptic_event"] * 1e15,
    "brain_fj_lennie": published["brain_j_lennie_2003"] * 1e15,
    "atp_zj": published["atp_j"] * 1e21,
    "gpu_pj_per_flop": result.measurements["gpu_j_per_flop"] * 1e12,
    "conv_intensity_min": float(conv_rows["intensity"].min()),
    "conv_intensity_max": float(conv_rows["intensity"].max()),
    "layers_memory_bound": int(table.loc[table["bound"] == "memory", "count"].sum()),
    "memory_bound_time_share_pct": 100 * result.measurements["memory_bound_time_share"],
}
results.glue_all({**numbers, **result.measurements, **shown})
results.glue_verdict(decision, ch.CLAIM)

# %% [markdown]
# ## Movement's share of a training step
#
# A ResNet-18 step on {glue:text}`image_size` × {glue:text}`image_size` images in batches
# of {glue:text}`batch_size` does {glue:text}`step_gflop:,.1f` GFLOP in its
# {glue:text}`layers_total` convolution and batch-norm layers and must move at least
# {glue:text}`step_dram_gb:.2f` GB to and from DRAM. Modelled with Horowitz's 45 nm table,
# moving data takes between {glue:text}`movement_share_low_pct:.0f`% of the step's energy
# (DRAM only) and {glue:text}`movement_share_high_pct:.0f`% (the whole hierarchy, with the
# {glue:text}`dataflow_name` dataflow); with Sze et al.'s Eyeriss table, between
# {glue:text}`sze_movement_share_low_pct:.0f`% and
# {glue:text}`sze_movement_share_high_pct:.0f`%.

# %% tags=["hide-input"]
glue("fig-energy-shares", charts.figure(
    ch.share_chart(result.shares, movement_share_threshold, dataflow,
                   "Movement's share of a ResNet-18 step's modelled energy"),
    "energy-shares"), display=False)
glue("fig-energy-step", charts.figure(
    ch.stage_chart(ch.stage_energy(result.ops, dataflow),
                   f"One ResNet-18 step, modelled with Horowitz's 45 nm table "
                   f"({dataflow.replace('_', '-')})"), "energy-step"), display=False)

# %% [markdown]
# ```{glue:figure} fig-energy-shares
# :name: fig-energy-shares
#
# Movement's share of one ResNet-18 training step's modelled energy, for each dataflow and
# cost table: each bar runs from DRAM-only counting (left end) to the whole hierarchy (right
# end). The dashed line is the threshold fixed before the run; the test uses the dataflow
# drawn solid.
# ```
#
# ```{glue:figure} fig-energy-step
# :name: fig-energy-step
#
# The step's modelled energy by stage and layer kind, split into arithmetic and the three
# levels of the hierarchy (Horowitz's 45 nm table; DRAM counted as the fewest bytes).
# ```
#
# The low end is a lower bound: a real chip re-reads from DRAM what its buffer cannot hold.
# The high end counts no reuse between processing elements (a word read once from the
# buffer and passed from neighbour to neighbour), so an array that exploits it sits between
# the two ends. In {numref}`fig-energy-step` the register file alone costs nearly as much as
# the arithmetic: every MAC reads two operands and reads and writes a partial sum.

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
# Each test asks whether the whole range lies on one side of the threshold. A range that
# straddles it means the answer turns on what the DRAM-only count leaves out; the dataflow,
# the batch (how often each weight is reused) and the image size move both ends.

# %% tags=["hide-input"]
rows = ch.per_event_rows(numbers, result.measurements["gpu_j_per_flop"],
                         numbers["gpu_j_per_flop_source"])
glue("fig-energy-brain", charts.figure(
    ch.per_event_chart(rows, "Energy per synaptic event and per FLOP"), "energy-brain"),
    display=False)

# %% [markdown]
# ## Against the brain
#
# The essay's second premise compares a computer with a brain. Published estimates count
# the brain's energy per *synaptic event* in ATP, each with its own definition. Attwell and
# Laughlin {cite}`attwell_laughlin_2001` budget the ATP a vesicle of glutamate costs when
# released in rodent grey matter; pumping out the ions that enter the postsynaptic cell and
# the calcium that triggered the release comes to {glue:text}`brain_fj_per_event:.1f` fJ
# at {glue:text}`atp_zj:.0f` zJ per ATP molecule (about 50 kJ/mol, a textbook value we
# assume), leaving out transmitter recycling. Lennie {cite}`lennie_2003` costs a whole
# spike in human cortex, its synaptic transmission included; spread over the synapses it
# reaches that is {glue:text}`brain_fj_lennie:.1f` fJ per synapse (from a summary of the
# paper, not checked against it here). Levy and Calvert {cite}`levy_calvert_2021` split
# the cortex's budget instead: about {glue:text}`brain_computation_w:.1f` W for
# computation against {glue:text}`brain_communication_w:.1f` W for communication, so in
# cortex too, moving signals costs more than computing with them.
#
# ```{glue:figure} fig-energy-brain
# :name: fig-energy-brain
#
# Joules per synaptic event (published estimates) against joules per FLOP of a ResNet-18
# step (modelled with Horowitz's 45 nm table, DRAM only and whole hierarchy) and a GPU's
# (measured where the run had one, else from its datasheet). Log scale.
# ```
#
# Modelled with Horowitz's 45 nm table, the training step costs
# {glue:text}`machine_pj_per_flop:.1f` pJ per FLOP through the whole hierarchy
# ({glue:text}`machine_pj_per_flop_dram_only:.1f` pJ counting DRAM only), about
# {glue:text}`machine_flop_over_brain_event:,.0f` times Attwell and Laughlin's synaptic
# event; the GPU figure is {glue:text}`gpu_pj_per_flop:.1f` pJ per FLOP
# ({glue:text}`gpu_j_per_flop_source`). A FLOP and a synaptic event are not the same unit
# of work, and every number here is a published figure or modelled from one, so this is a
# comparison of published figures, shown as facts beside the verdict: it does not vote.

# %% tags=["hide-input"]
roof = result.roof
glue("fig-energy-bandwidth", charts.figure(
    ch.bandwidth_chart(roof, result.caches,
                       f"Bandwidth by working set: {result.device_name}"),
    "energy-bandwidth"), display=False)
glue("fig-energy-roofline", charts.figure(
    ch.roofline_chart(roof, table, f"Roofline with ResNet-18 layers, batch {batch_size}: "
                      f"{result.device_name}", shown["largest_ws_level"]),
    "energy-roofline"), display=False)

# %% [markdown]
# ## Where this machine spends its time
#
# ```{glue:figure} fig-energy-bandwidth
# :name: fig-energy-bandwidth
#
# Achieved bandwidth of a STREAM-like kernel against its working set (the bytes of all
# arrays it touches), measured on this machine; dashed lines mark the cache sizes the system
# reports. Bytes counted are reads plus writes.
# ```
#
# On {glue:text}`device_name` the largest working set
# ({glue:text}`largest_ws_mib:,.0f` MiB, held in {glue:text}`largest_ws_level`) streams at
# {glue:text}`main_memory_gb_per_s:.1f` GB/s and the fastest at
# {glue:text}`fastest_gb_per_s:.1f` GB/s; the fp32 matrix product ran at
# {glue:text}`peak_gflops_per_s:,.1f` GFLOP/s, so the ridge point of the roofline
# {cite}`williams_2009` lies at {glue:text}`ridge_flop_per_byte:.1f` FLOPs per byte.
#
# ```{glue:figure} fig-energy-roofline
# :name: fig-energy-roofline
#
# This machine's measured roofline (solid: the largest working set's bandwidth; dashed: the
# fastest, from cache), the ridge point (dotted) and every distinct layer of the step placed
# from its counted FLOPs, its fewest bytes and its measured time.
# ```
#
# The convolutions do {glue:text}`conv_intensity_min:.0f` to
# {glue:text}`conv_intensity_max:.0f` FLOPs per byte they must move;
# {glue:text}`layers_memory_bound` of the {glue:text}`layers_total` layers sit left of the
# ridge and take {glue:text}`memory_bound_time_share_pct:.0f`% of the step's measured
# time ({glue:text}`step_time_s:.2f` s). {glue:text}`above_roof_note` Energy counters:
# {glue:text}`energy_note`.
