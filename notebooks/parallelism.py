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
# # Machine parallelism
#
# **The claim.** Deep learning leans on many processors working at once, and the essay
# {cite}`rinkus_essay`, pointing to the distributed-learning part of the NIPS tutorial
# by Hinton, Bengio and LeCun {cite}`hinton_bengio_lecun_2015`, argues that shared
# parameters make this costly: a weight used at every position gathers its gradient from
# every position, and when positions or images are spread over machines, those
# contributions have to travel. Unshared, local weights would not need to, as in cortex.
#
# **The experiment.** A small convolutional net and its locally connected twin (same
# layers and shapes, one filter per position instead of one per layer) are trained on
# handwritten digits by several processes at once, for real, in the two basic ways of
# splitting the work:
#
# * *data parallel*: each process holds the whole net and a share of the images; after
#   every step all gradients are averaged across processes (an all-reduce);
# * *spatially partitioned*: each process holds a horizontal band of every image and
#   feature map, and only the weights of its own positions. Neighbours swap the rows at
#   their borders (halos) before each 3x3 layer and the gradients of those rows after
#   it; a convolution's shared filters still need their gradients summed over all
#   processes, a locally connected layer's weights need nothing.
#
# We count every byte the processes send, time the steps, and then model the same two
# regimes for ResNet-18 at ImageNet size on up to a thousand workers.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for data order and initialisation
world_size = 2  # processes in the real runs [range: 2..]
canvas = 16  # side of the blank image the 8x8 digits are centred on, pixels [range: 8..]
channels = [16, 32]  # channels of the two 3x3 layers [nonempty]
batch_size = 32  # images per process per data-parallel step [range: 1..]
steps = 10  # timed training steps per run [range: 1..]
lr = 0.05  # learning rate of plain SGD [range: >0]
sweep_max_kib = 16384  # largest all-reduce of the latency-bandwidth sweep, KiB [range: 4..]
sweep_points = 7  # sizes in the sweep, a factor 4 apart [range: 2..]
sweep_repeats = 10  # all-reduces timed per size [range: 1..]
threads = 1  # torch CPU threads per process, 0 for torch's default [range: 0..]
timeout_s = 300  # seconds the processes may take before they are stopped [range: 10..]
model_width = 64  # ResNet-18 width in the model, 64 as published [range: 1..]
model_in_size = 224  # image side in the model, pixels [range: 32..]
model_batch = 1024  # images per step for all workers together, in the model [range: 1..]
model_workers_max = 1024  # most workers in the model, a power of two [range: 8..]
dc_bandwidth_gbs = 25.0  # assumed datacenter link bandwidth per direction, GB/s [range: >0]
dc_latency_us = 5.0  # assumed datacenter link latency per message, microseconds [range: 0..]

# %% tags=["hide-input"]
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import parallelism as ch
from gardenpath.measure.device import describe, prepare

charts.enable()
dev = prepare(device, threads=threads)  # float32 means float32: TF32 off on GPUs
info = describe(dev)
params = results.parameters(globals(), "parallelism")
res = ch.run(params, dev)
numbers, measurements, verdict, why = ch.summarise(res)
results.glue_all(numbers)
results.glue_all(measurements)
results.glue_all(ch.setup_values(res, info))
results.glue_prose({**ch.prose(res, info), "why": why})
glue("verdict", verdict, display=False)

# %% [markdown]
# ## Two ways to split a step, run for real
#
# {glue:md}`backend_sentence` The digits are scikit-learn's 8x8 images centred on a
# {glue:text}`canvas` x {glue:text}`canvas` canvas; the nets have two 3x3 layers of
# {glue:text}`channels_text` channels, each followed by 2x2 pooling, and a linear
# readout. The convolutional net has {glue:text}`conv_parameters:,` parameters, the
# locally connected one {glue:text}`local_parameters:,`. Each step processes
# {glue:text}`global_batch` images in both regimes ({glue:text}`batch_size` per process
# when data parallel; all of them, a band each, when partitioned), and
# {glue:text}`steps` timed steps follow two warm-up steps.
#
# Data parallel, every step all-reduces every gradient, counted bucket by bucket through
# a hook on PyTorch's DistributedDataParallel: {glue:text}`conv_dp_payload_bytes:,` bytes
# for the convolutional net and {glue:text}`local_dp_payload_bytes:,` for the locally
# connected one. Partitioned, the processes send halos and the readout's partial logits,
# and the convolutional net adds the all-reduce of its filters' gradients
# ({glue:text}`conv_sp_shared_params:,` shared parameters); the locally connected net
# has no shared parameter. {glue:md}`halo_sentence` {glue:md}`check_sentence`
#
# {numref}`fig-parallel-real` and the table below give the bytes sent per step by all
# processes together (an all-reduce of *n* bytes over *p* processes is counted as the
# ring algorithm's 2(*p*-1)/*p* *n* per process). Data parallel, the locally connected
# net sends {glue:text}`dp_local_over_conv:.1f` times the convolutional net's bytes.
# Partitioned, the convolutional net sends {glue:text}`sp_conv_over_local:.2f` times the
# locally connected net's: {glue:md}`split_sentence`

# %% tags=["hide-input"]
glue("fig-parallel-real", charts.figure(ch.chart_real(res), "parallel-real"),
     display=False)
ch.real_table(res)

# %% [markdown]
# ```{glue:figure} fig-parallel-real
# :name: fig-parallel-real
#
# Bytes sent per training step by all processes together, measured by counting every
# message of the real multi-process run, by regime, net and kind of message (all-reduces
# counted as the ring algorithm sends them). The step times in the table are medians
# on this machine.
# ```
#
# Partitioning also divides the weights: each process holds at most
# {glue:text}`local_sp_params_held_max:,` of the locally connected net's
# {glue:text}`local_parameters:,` parameters, while every process must hold all of the
# convolutional net's filters.
#
# ## The link between the processes
#
# To model more workers we need the link's latency and bandwidth. All-reduces of
# {glue:text}`sweep_min_bytes:,` to {glue:text}`sweep_max_bytes:,` bytes between the
# same processes, {glue:text}`sweep_repeats` of each size, were fitted with the ring
# model (latency alpha per message, beta seconds per byte):
# alpha = {glue:text}`alpha_us:.0f` µs and a bandwidth of
# {glue:text}`bandwidth_gbs:.2f` GB/s, with a root-mean-square misfit of
# {glue:text}`fit_rms_us:.0f` µs ({numref}`fig-parallel-sweep`). This is
# processes on one machine, not a network; as a second, stated assumption we use a
# datacenter-class link of {glue:text}`dc_latency_us:.0f` µs and
# {glue:text}`dc_bandwidth_gbs:.0f` GB/s per direction.

# %% tags=["hide-input"]
glue("fig-parallel-sweep", charts.figure(ch.chart_sweep(res), "parallel-sweep"),
     display=False)

# %% [markdown]
# ```{glue:figure} fig-parallel-sweep
# :name: fig-parallel-sweep
#
# Time of one all-reduce against its size between the processes of the real run
# (points: every measured repeat) and the fitted latency-bandwidth line. Log-log.
# Measured on this machine.
# ```
#
# ## Many workers, ResNet-18 (modelled)
#
# For ResNet-18 at {glue:text}`model_in_size` x {glue:text}`model_in_size` and width
# {glue:text}`model_width`, counted on PyTorch's meta device, the shared net's 3x3 and
# 7x7 layers hold {glue:text}`resnet_conv_spatial:,` weights and the unshared ones
# {glue:text}`resnet_local_spatial:,`. We model a step of {glue:text}`model_batch`
# images on 2 to {glue:text}`model_workers_max` workers. Data parallel, each worker
# all-reduces every gradient. Spatially partitioned, the feature maps are cut into a
# near-square grid, which fits at most {glue:text}`spatial_max` workers on ResNet's
# smallest 7x7 maps; beyond that, groups of {glue:text}`spatial_max` partitioned workers
# are themselves data parallel. Each worker sends its halos (counted as for stride 1, an
# upper bound), the pooled features and batch-norm statistics within its group, the
# all-reduce of every shared gradient (a convolution's filters, batch-norm's scales and
# shifts) over all workers, and the all-reduce of the readout and its own locally
# connected filters across groups. Time is the latency-bandwidth model, with no overlap
# of communication and computation.
#
# At 8 workers on the assumed datacenter link, data parallel, each worker sends
# {glue:text}`model_dp_conv_p8_sent_mb:,.0f` MB per step for the shared ResNet-18 and
# {glue:text}`model_dp_local_p8_sent_mb:,.0f` MB unshared; partitioned,
# {glue:text}`model_sp_conv_p8_sent_mb:,.0f` MB against
# {glue:text}`model_sp_local_p8_sent_mb:,.0f` MB. Taking each net in its cheaper regime,
# the shared net sends {glue:text}`model_best_conv_mb_p8:,.0f` MB and the unshared one
# {glue:text}`model_best_local_mb_p8:,.0f` MB. {numref}`fig-parallel-model-bytes` and
# {numref}`fig-parallel-model-time` show how this changes with the number of workers.

# %% tags=["hide-input"]
glue("fig-parallel-model-bytes", charts.figure(ch.chart_model(res, "bytes"),
                                               "parallel-model-bytes"), display=False)
glue("fig-parallel-model-time", charts.figure(ch.chart_model(res, "time"),
                                              "parallel-model-time"), display=False)

# %% [markdown]
# ```{glue:figure} fig-parallel-model-bytes
# :name: fig-parallel-model-bytes
#
# Bytes each worker sends per training step of ResNet-18, modelled from the layer
# shapes, against the number of workers, for both regimes and both nets (spatial
# partitioning becomes spatial groups that are data parallel beyond the largest grid the
# smallest feature map allows). Log-log. Counted, not measured.
# ```
#
# ```{glue:figure} fig-parallel-model-time
# :name: fig-parallel-model-time
#
# Communication time per step for the same cases on two links: the one fitted to this
# machine's all-reduces and the assumed datacenter link. Modelled (latency-bandwidth,
# ring all-reduce), not measured. Log-log.
# ```
#
# ## Beside the published account
#
# Bartunov et al. {cite}`bartunov_2018` note that weight sharing greatly reduces both the
# memory for parameters and the communication between replicas on different
# processors; the data-parallel numbers above are that statement measured. The essay's
# picture, local weights that need not travel, is the partitioned regime, where it
# holds; but there every worker also swaps halos, which grow with the batch and the
# size of the feature maps. {glue:md}`compare_sentence`
#
# ## Verdict
#
# ```{admonition} Verdict
# **{glue:text}`verdict`.** {glue:md}`why`
# ```
#
# The rule: a comparison is *for* the essay when the convolutional net sends at least
# {glue:text}`margin:.1f` times the locally connected net's bytes, *against* it in the
# reverse case; the claim is *supported* when every comparison is for it, *not
# supported* when none is, and *mixed* otherwise. Which regime one has in mind decides
# the first two comparisons: with every worker holding a replica, sharing is what keeps
# the traffic small; with every worker owning a piece of the image, sharing is what
# forces a global exchange. The third asks which net can be spread over processors more
# cheaply at all, each split its own best way.

# %% tags=["hide-input"]
rec = results.record(
    claim="Parameter sharing entails massive data movement when training is spread over "
          "many processors; unshared local weights would not need it.",
    verdict=verdict,
    numbers=numbers,
    why=why,
    measurements=measurements,
    params=params,
    device=info,
    seed=seed,
)
