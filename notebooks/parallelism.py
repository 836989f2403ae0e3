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
# # Machine parallelism
#
# **The claim.** {glue:md}`claim_text` The essay {cite}`rinkus_essay`, pointing to the
# distributed-learning part of the NIPS 2015 tutorial by Hinton, Bengio and LeCun
# {cite}`hinton_bengio_lecun_2015`, reads it this way: a weight used at every position
# collects its gradient from every position, so once positions or images are spread over
# machines those contributions must travel, while weights that belong to one place, as in
# cortex, could stay where they are.
#
# **The experiment.** A small convolutional net and its locally connected twin (the same
# shapes, a filter per position instead of one per layer) are trained on handwritten
# digits by several processes at once, for real, in three ways of splitting the work:
#
# * *data parallel*: each process holds the whole net and a share of the images; every
#   step, all gradients are averaged across processes (an all-reduce);
# * *spatially partitioned*: each process holds a horizontal band of every image and
#   feature map, and the weights of its own positions only. Neighbours swap the rows at
#   their borders (halos) before each 3x3 layer and those rows' gradients after it; a
#   convolution's shared filters still need their gradients summed over all processes,
#   a locally connected layer's weights need nothing;
# * *parameter server*: one process holds the parameters, the others push their
#   gradients to it and pull the parameters back, each at its own pace (asynchronous
#   SGD, the Downpour scheme of DistBelief {cite}`dean_2012_distbelief`, the regime
#   LeCun's slide names).
#
# Every byte the processes send is counted. The link between them is measured at every
# power-of-two message size, and that measurement calibrates a model of ResNet-18
# {cite}`he_2016` at ImageNet size, which decides the claim at paper scale.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for data order and initialisation
world_size = 2  # processes in the real runs (parameter server: one server, the rest workers) [range: 2..]
canvas = 16  # side of the blank image the 8x8 digits are centred on, pixels [range: 8..]
channels = [16, 32]  # channels of the two 3x3 layers [nonempty] [range: 1..]
batch_size = 32  # images per worker per step (spatial: all workers' images, a band each) [range: 1..]
steps = 10  # timed training steps per run, after two warm-up steps [range: 1..]
lr = 0.05  # learning rate of plain SGD [range: >0]
sweep_max_kib = 16384  # largest all-reduce of the link sweep (every power of two from 4 bytes), KiB [range: 1..]
sweep_repeats = 10  # rounds of the link sweep, each timing every size once [range: 2..]
link_ranges_kib = [32, 512]  # message sizes where the link fit's size ranges meet, KiB [nonempty]
threads = 1  # torch CPU threads per process, 0 for torch's default [range: 0..]
timeout_s = 300  # seconds the processes may take before they are stopped [range: 10..]
model_width = 64  # ResNet-18 width in the model, 64 as published [range: 1..]
model_in_size = 224  # image side in the model, pixels [range: 32..]
model_batch = 1024  # images per step for all workers together, in the model [range: 1..]
model_workers_max = 1024  # most workers in the model's charts, a power of two [range: 8..]
decide_workers = 8  # workers at which the ResNet-18 model decides [range: 2..]
ratio_threshold = 1.1  # shared over unshared communication time that counts as heavier, x [range: >0]
link_bandwidth_gbs = 25.0  # assumed datacenter link bandwidth per direction, GB/s [range: >0]
link_latency_us = 5.0  # assumed datacenter link latency per message, microseconds [range: 0..]

# %% tags=["hide-input"]
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import parallelism as ch
from gardenpath.measure.device import describe, prepare

charts.enable()
dev = prepare(device, threads=threads)  # float32 means float32: TF32 off on GPUs
info = describe(dev)
params = results.parameters(globals(), "parallelism")
result = ch.run(params, dev)

# %% tags=["hide-input"]
decision = ch.decide(result)
numbers, measurements = ch.numbers(result), ch.measurements(result)
results.record(ch.CLAIM, decision, numbers, measurements=measurements, params=params,
               device=info, seed=seed, verdict_basis="measurements")
results.glue_all(params)
results.glue_all(numbers)
results.glue_all(measurements)
results.glue_all(ch.setup_values(result))
results.glue_prose({**ch.prose(result), "claim_text": ch.CLAIM})
results.glue_verdict(decision, ch.CLAIM)

# %% [markdown]
# ## Three ways to split a step, run for real
#
# {glue:md}`backend_sentence` The digits are scikit-learn's 8x8 images centred on a
# {glue:text}`canvas` x {glue:text}`canvas` canvas; the nets have two 3x3 layers of
# {glue:text}`channels_text` channels, each followed by 2x2 pooling, and a linear
# readout. The convolutional net has {glue:text}`conv_parameters:,` parameters, the
# locally connected one {glue:text}`local_parameters:,`. Data parallel and partitioned,
# each step processes {glue:text}`global_batch` images ({glue:text}`batch_size` per
# process, or all of them, a band each); with a parameter server the
# {glue:text}`workers_in_server_run` worker(s) take {glue:text}`batch_size` each.
# {glue:text}`steps` timed steps follow two warm-up steps.
#
# Data parallel, every gradient is all-reduced each step, counted bucket by bucket
# through a hook on PyTorch's DistributedDataParallel. With a parameter server, every
# gradient goes to the server and every parameter comes back. Partitioned, the
# processes send halos and the readout's partial logits, and the convolutional net adds
# the all-reduce of its filters' gradients ({glue:text}`conv_spatial_shared_params:,`
# shared parameters); the locally connected net has none. {glue:md}`halo_sentence`
# {glue:md}`check_sentence`
#
# {numref}`fig-parallel-real` and the table below give the bytes sent per step by all
# processes together (an all-reduce of *n* bytes over *p* processes counted as the ring
# algorithm's 2(*p*-1)/*p* *n* per process {cite}`patarasuk_yuan_2009`). Partitioned,
# the convolutional net sends {glue:text}`digits_spatial_conv_over_lc:.2f` times the
# locally connected net's bytes; its communication takes
# {glue:text}`measured_ratio:.2f` times as long per step (the ratio of the median steps;
# 95% interval {glue:text}`measured_ratio_lo:.2f` to {glue:text}`measured_ratio_hi:.2f`,
# bootstrapped over the timed steps).

# %% tags=["hide-input"]
glue("fig-parallel-real", charts.figure(ch.chart_real(result), "parallel-real"),
     display=False)
ch.real_table(result)

# %% [markdown]
# ```{glue:figure} fig-parallel-real
# :name: fig-parallel-real
#
# Bytes sent per training step by all processes together, counted message by message
# in the real multi-process runs, by regime, net and kind of message (all-reduces
# counted as the ring algorithm sends them). Step times in the table are medians on
# this machine.
# ```
#
# Partitioning also divides the weights: each process holds at most
# {glue:text}`local_spatial_params_held_max:,` of the locally connected net's
# {glue:text}`local_parameters:,` parameters, while every process holds all of the
# convolutional net's filters.
#
# ## The link between the processes
#
# To model more workers we need the link's latency and bandwidth. All-reduces of
# {glue:text}`sweep_sizes_count` sizes, every power of two from
# {glue:text}`sweep_min_bytes:,` to {glue:text}`sweep_max_bytes:,` bytes, were timed in
# {glue:text}`sweep_repeats` interleaved rounds. A ring all-reduce is a sequence of
# messages, each costing a latency alpha plus its bytes times beta; the fit takes each
# size's fastest round (the reading least disturbed by other work on this shared
# machine) and fits alpha and beta separately in each range of message sizes, the ranges
# meeting at {glue:text}`link_split_text`, since caches make the cost per byte change
# with size ({numref}`fig-parallel-sweep`). The smallest messages give a latency of
# {glue:text}`latency_us:.0f` µs with a misfit of {glue:text}`latency_rms_us:.0f` µs.
# {glue:md}`fit_sentence` The largest give {glue:text}`bandwidth_gbs:.2f` GB/s, with a
# misfit of {glue:text}`bandwidth_rel_rms:.0%` of their times. These are processes on one
# machine, not a network; as a second, stated assumption the charts also use a
# datacenter-class link of {glue:text}`link_latency_us:.0f` µs and
# {glue:text}`link_bandwidth_gbs:.0f` GB/s per direction.

# %% tags=["hide-input"]
glue("fig-parallel-sweep", charts.figure(ch.chart_sweep(result), "parallel-sweep"),
     display=False)

# %% [markdown]
# ```{glue:figure} fig-parallel-sweep
# :name: fig-parallel-sweep
#
# Time of one all-reduce against its size between the processes of the real run (points:
# every round) and the link fitted per size range to each size's fastest round.
# Log-log. Measured on this machine.
# ```
#
# ## Many workers, ResNet-18 (modelled)
#
# For ResNet-18 at {glue:text}`model_in_size` x {glue:text}`model_in_size` and width
# {glue:text}`model_width`, counted on PyTorch's meta device, the shared net's 3x3, 7x7
# and 1x1 layers hold {glue:text}`conv_resnet_spatial:,` weights and the unshared ones
# {glue:text}`local_resnet_spatial:,`. We model a step of {glue:text}`model_batch`
# images. Data parallel, each worker all-reduces every gradient. With a parameter server,
# each worker pushes every gradient and pulls every parameter, whatever the number of
# workers. Spatially partitioned, the feature maps are cut into a near-square grid, which
# fits at most {glue:text}`spatial_max` workers on ResNet's smallest 7x7 maps; beyond
# that, groups of {glue:text}`spatial_max` partitioned workers are themselves data
# parallel. Each partitioned worker sends its halos (counted as for stride 1, an upper
# bound), the pooled features and batch-norm statistics within its group, the all-reduce
# of every shared gradient (a convolution's filters, batch norm's scales and shifts)
# over all workers, and the all-reduce of the readout and its own locally connected
# filters across groups. Time is the fitted link's cost of each message, with no overlap
# of communication and computation.
#
# At {glue:text}`decide_workers` workers, data parallel, each worker sends
# {glue:text}`model_data_conv_sent_mb:,.0f` MB per step for the shared ResNet-18 and
# {glue:text}`model_data_local_sent_mb:,.0f` MB unshared; with a parameter server,
# {glue:text}`model_server_conv_sent_mb:,.0f` MB against
# {glue:text}`model_server_local_sent_mb:,.0f` MB ({glue:text}`server_lc_over_conv:.0f`
# times as much); partitioned, {glue:text}`model_spatial_conv_sent_mb:,.0f` MB against
# {glue:text}`model_spatial_local_sent_mb:,.0f` MB. On this machine's link, partitioned,
# the shared net's communication takes {glue:text}`modelled_ratio:.2f` times the
# unshared net's (95% interval {glue:text}`modelled_ratio_lo:.2f` to
# {glue:text}`modelled_ratio_hi:.2f` over the sweep's rounds, bootstrapped).
# {numref}`fig-parallel-model-bytes` and {numref}`fig-parallel-model-time` show how
# this changes with the number of workers. {glue:md}`scale_sentence`

# %% tags=["hide-input"]
glue("fig-parallel-model-bytes", charts.figure(ch.chart_model(result, "bytes"),
                                               "parallel-model-bytes"), display=False)
glue("fig-parallel-model-time", charts.figure(ch.chart_model(result, "time"),
                                              "parallel-model-time"), display=False)

# %% [markdown]
# ```{glue:figure} fig-parallel-model-bytes
# :name: fig-parallel-model-bytes
#
# Bytes sent per training step of ResNet-18 for each worker, modelled from the layer
# shapes, against the number of workers, for the three regimes and both nets (spatial
# partitioning becomes data-parallel groups of partitioned workers beyond the largest
# grid the smallest feature map allows). Log-log. Counted, not measured.
# ```
#
# ```{glue:figure} fig-parallel-model-time
# :name: fig-parallel-model-time
#
# Communication time per step for the same cases on two links: the one fitted to this
# machine's all-reduces and the assumed datacenter link. Modelled, not measured. Log-log.
# ```
#
# ## Beside the published account
#
# Bartunov et al. {cite}`bartunov_2018` note that weight sharing greatly reduces both
# the memory for parameters and the communication between replicas on different
# processors: the data-parallel and parameter-server numbers above are that statement
# counted, and they follow from the parameter counts alone, so they are shown as facts
# rather than tests. DistBelief {cite}`dean_2012_distbelief` partitioned each model
# replica over machines and observed that locally connected models, whose partitions
# exchange little, spread more easily than fully connected ones; its image model was
# locally connected. Partitioning is the arrangement in which unshared weights stay
# home, the regime the essay's picture describes, and the one the tests below judge.
#
# ## Verdict
#
# ````{admonition} Verdict
# ```{glue:md} verdict_box
# :format: myst
# ```
# ````
#
# The rule, fixed in the parameters cell before the run: in the partitioned regime, the
# claim is supported when the shared net's communication takes at least
# {glue:text}`ratio_threshold:.2f` times the unshared net's, both measured on digits and
# modelled for ResNet-18 at {glue:text}`decide_workers` workers on this machine's link.
# Each test decides only when its whole 95% interval lies on one side of the threshold.
# The modelled test judges the one arrangement the parameters name, every worker
# partitioned and none replicated; the paragraph on many workers says how far it carries.
