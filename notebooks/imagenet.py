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
#     timeout_s: 1800
#     runs_alone: true
# ---

# %% [markdown]
# # ImageNet without sharing
#
# **The claim.** {glue:text}`claim` The essay {cite}`rinkus_essay` argues that
# convolutional networks owe their practical training times to parameter sharing, and that
# networks without it (it cites {cite}`gregor_szlam_lecun_2011`, a paper on structured
# sparse coding; the locally connected work of those authors is {cite}`gregor_lecun_2010`)
# are still an early experiment. We ask how much longer ImageNet training takes when no
# weight is shared.
#
# **The experiment.** ResNet-18 and an AlexNet-like network, at ImageNet's image size, are
# built twice: with ordinary convolutions, and with every convolution replaced by a locally
# connected layer of the same shape (one filter per output position instead of one per
# layer). We count their weights, arithmetic and training memory; time a training step on
# this device layer by layer, over several timing rounds; check that layer model against a
# whole reduced network; and project the two training runs onto many data-parallel workers.
# What the projection assumes (how fast a worker is, how many there are, how fast they talk,
# how many more epochs the unshared net needs) is not fixed but swept, and the verdict is
# the share of that swept region where the unshared net takes much longer.

# %% tags=["parameters"]
device = "auto"  # where to run [choices: auto | cpu | cuda]
seed = 0  # random seed for initialisation, inputs and the bootstrap
in_size = 224  # image side, pixels [range: 32..]
width = 64  # channels of ResNet-18's first stage (64 in the paper) [range: 1..]
time_batches = [8, 16, 32, 64]  # batch sizes timed per layer, at least 4, images [range: 1..]
time_fraction = 0.125  # fraction of each layer's output rows timed, scaled by MACs [range: >0, ..1]
timing_rounds = 5  # rounds, each timing every layer configuration once [range: 2..]
timing_repeats = 1  # timed calls per layer and batch in a round, after one warm-up [range: 1..]
threads = 1  # CPU threads while timing, 0 for torch's default [range: 0..]
batch_size = 256  # images per worker per training step [range: 1..]
num_epochs = 90  # epochs of the shared net's training run, as in He et al. 2016 [range: 1..]
workers_min = 8  # fewest data-parallel workers swept (a power of two) [range: 1..]
workers_max = 1024  # most data-parallel workers swept (a power of two) [range: 1..]
link_min_gbs = 1.25  # slowest link swept: 10 GbE, GB/s per direction [range: >0]
link_max_gbs = 200.0  # fastest link swept: NVLink-class, GB/s per direction [range: >0]
link_points = 4  # links swept, evenly on a log scale [range: 1..]
link_latency_us = 10.0  # assumed latency per message on every link, microseconds [range: 0..]
speed_points = 4  # worker speeds swept from this device's to a GPU's, log scale [range: 1..]
fast_worker_images_per_s = 125.0  # ResNet-50 training images/s per P100 GPU, Goyal et al. 2017 [range: >0]
fast_worker_gmacs_per_image = 3.8  # ResNet-50 forward GMACs per image, He et al. 2016 [range: >0]
epoch_factor_max = 2.0  # unshared net's epochs over the shared net's, upper end swept [range: 1..]
ratio_threshold = 2.0  # LC/conv training time from which a point counts as impractical [range: >0]
share_threshold = 0.5  # supported when at least this share of the sweep passes [range: 0..1]
e2e_width = 32  # reduced locally connected ResNet-18 for the end-to-end check: width [range: 1..]
e2e_in_size = 112  # its image side, pixels [range: 32..]
e2e_batch = 16  # its batch, images [range: 1..]
e2e_tolerance = 0.15  # the layer model must be within this fraction of the whole step [range: >0]
bootstrap_draws = 400  # bootstrap draws over the timing rounds [range: 10..]
accelerator_memory_gb = 80.0  # memory of one accelerator, for the memory comparison, GB [range: >0]

# %% tags=["hide-input"]
import pandas as pd
from myst_nb import glue

from gardenpath import charts, results
from gardenpath.chapters import imagenet as ch
from gardenpath.measure.device import describe, prepare

charts.enable()
pd.set_option("display.max_colwidth", None)
params = results.parameters(globals(), "imagenet")
dev = prepare(device, threads=threads)  # float32 means float32: TF32 off on GPUs
info = describe(dev)
result = ch.run(params, dev)

# %% tags=["hide-input"]
decision = ch.decide(result)
numbers, measured = ch.key_numbers(result), ch.measurements(result)
rec = results.record(ch.CLAIM, decision, numbers, measurements=measured, params=params,
                     device=info, seed=seed, verdict_basis="measurements")
results.glue_verdict(decision, ch.CLAIM)
results.glue_all(numbers)
results.glue_all(measured)
results.glue_all(ch.setup_values(result, info))
results.glue_prose(ch.prose(result, info))
glue("claim", ch.CLAIM, display=False)

# %% [markdown]
# ````{admonition} Verdict
# ```{glue:md} verdict_box
# :format: myst
# ```
# ````
#
# ## What sharing saves: parameters
#
# At {glue:text}`in_size` x {glue:text}`in_size` pixels and width {glue:text}`width`,
# ResNet-18's convolutions hold {glue:text}`resnet18_conv_spatial_weights:,` weights.
# Unshared, the same layers hold {glue:text}`resnet18_local_spatial_weights:,`:
# {glue:text}`resnet18_weight_ratio:.0f` times as many, because every output position of
# a layer gets its own copy of the filter. For the AlexNet-like net the factor is
# {glue:text}`alexnet_like_weight_ratio:.0f` on its five feature layers; its three fully
# connected layers, identical in both versions, add the same to each. Sharing changes how
# many weights there are, not how many multiplications a pass does: ResNet-18 does
# {glue:text}`resnet18_conv_macs_per_image:,` multiply-accumulates per image in its weight
# layers either way (equal: {glue:text}`resnet18_macs_equal`). Training in 32-bit floats
# keeps each parameter, its gradient and one momentum buffer (SGD) or two (Adam): the
# unshared ResNet-18 needs {glue:text}`resnet18_local_sgd_gb:.3g` GB with SGD and
# {glue:text}`resnet18_local_adam_gb:.3g` GB with Adam, against
# {glue:text}`resnet18_conv_sgd_gb:.3g` GB and {glue:text}`resnet18_conv_adam_gb:.3g` GB
# shared; one accelerator holds {glue:text}`accelerator_memory_gb:.0f` GB. These counts
# are facts of the architecture: they are shown beside the verdict, and do not vote.

# %% tags=["hide-input"]
glue("fig-imagenet-weights", charts.figure(ch.chart_weights(result), "imagenet-weights"),
     display=False)
ch.counts_table(result)

# %% [markdown]
# ```{glue:figure} fig-imagenet-weights
# :name: fig-imagenet-weights
#
# Parameters of every convolutional, locally connected and linear layer of ResNet-18 and
# the AlexNet-like net at full width, counted on PyTorch's meta device (nothing
# allocated). Log scale. The table above gives the totals.
# ```
#
# ## Time, measured layer by layer
#
# {glue:md}`method_sentence` Layers that occur several times with one shape (ResNet's
# repeated blocks, the linear layers both versions share) are timed once per round.
# Through the times at the {glue:text}`timing_rounds` rounds' batches we fit a straight
# line, a fixed part per step plus a part per image, with the Theil-Sen estimator (the
# median of the slopes between all pairs of points), which a few timings disturbed by other
# work on the machine cannot pull far. For a locally connected layer the fixed part is
# mostly reading and writing its large weight and gradient tensors, which a larger batch
# shares. The line is scaled to the full layer by its multiply-accumulates and evaluated
# at the training batch of {glue:text}`batch_size` images (beyond the largest timed batch,
# {glue:text}`time_batch_max`: the line is extrapolated), and one SGD-with-momentum update
# per layer is added, scaled by its parameters. {glue:md}`fallback_sentence`
#
# A training step of ResNet-18 at batch {glue:text}`batch_size` comes to
# {glue:text}`resnet18_conv_step_s:.1f` s with sharing and
# {glue:text}`resnet18_local_step_s:.1f` s without, on {glue:text}`device_name`
# ({numref}`fig-imagenet-layer-time`).

# %% tags=["hide-input"]
glue("fig-imagenet-layer-time",
     charts.figure(ch.chart_layer_time(result), "imagenet-layer-time"), display=False)

# %% [markdown]
# ```{glue:figure} fig-imagenet-layer-time
# :name: fig-imagenet-layer-time
#
# Forward plus backward time per training step of each layer configuration (all its
# occurrences together), projected to the training batch from the timings on this device
# (hover for the timed input and the fit). Log scale. Batch norm, ReLU, pooling and the
# loss are not included; the check below measures what they add.
# ```
#
# ## Does the layer model add up?
#
# The model sums weight layers timed alone, and leaves out everything between them (batch
# norm, ReLU, pooling, the loss); zeroing the gradients is timed with each layer's
# optimizer step. To check it end to end, a reduced
# locally connected ResNet-18 (width {glue:text}`e2e_width`, {glue:text}`e2e_in_size` x
# {glue:text}`e2e_in_size` pixels) had its layers timed whole, in rounds and by the same
# method, and its whole training step (forward, loss, backward, optimizer) timed at batch
# {glue:text}`e2e_batch`. {glue:md}`e2e_sentence` {glue:md}`strip_sentence` Neither check
# reaches the training batch, so the extrapolation of the lines is not checked here.
#
# ## The sweep
#
# One epoch is {glue:text}`imagenet_train_images:,` images. On {glue:text}`workers_min`
# to {glue:text}`workers_max` data-parallel workers ({glue:text}`workers_points` counts,
# powers of two) each takes {glue:text}`batch_size` images per step and then all-reduces
# every fp32 gradient around a ring, with no overlap of communication and computation:
# {glue:text}`resnet18_conv_gradient_gb:.3g` GB per step for the shared ResNet-18,
# {glue:text}`resnet18_local_gradient_gb:.3g` GB unshared. The link runs from 10 GbE
# ({glue:text}`link_min_gbs` GB/s per direction) to an NVLink-class
# {glue:text}`link_max_gbs:.0f` GB/s ({glue:text}`link_points` values, and
# {glue:text}`link_latency_us:.0f` µs per message: assumed, not measured). A worker runs
# from as fast as this device (the shared ResNet-18 trained at
# {glue:text}`resnet18_cpu_gmacs_per_s:.1f` GMAC/s here) to a GPU of the kind Goyal et al.
# used {cite}`goyal_2017`: they trained ResNet-50 for {glue:text}`anchor_goyal_epochs`
# epochs on {glue:text}`anchor_goyal_gpus` {glue:text}`anchor_goyal_gpu` GPUs in
# {glue:text}`anchor_goyal_hours` hour, about
# {glue:text}`anchor_goyal_images_per_s:.0f` images per second per GPU, communication
# included (the parameters cell takes {glue:text}`fast_worker_images_per_s:.0f`), or {glue:text}`fast_worker_gmacs_per_s:,.0f` GMAC/s of training
# with ResNet-50's {glue:text}`fast_worker_gmacs_per_image` GMACs per image
# {cite}`he_2016` ({glue:text}`speed_points` speeds, evenly on a log scale). We assume a
# faster worker speeds up both nets alike, as much as it speeds up the shared one; a GPU
# may well run the unshared layers, which read a fresh weight for every multiplication,
# relatively slower than that. Finally, the unshared net may need more epochs to reach the
# same accuracy: Bartunov et al. {cite}`bartunov_2018` report it ending far less accurate,
# and Pogodin et al. {cite}`pogodin_2021` that extra translated images, far more than usual,
# still leave it short. We found no published learning curve that gives the factor, so we
# sweep 1x (the same {glue:text}`num_epochs` epochs) and
# {glue:text}`epoch_factor_max:.0f`x, an assumption.
#
# Over these {glue:text}`sweep_points` combinations the unshared ResNet-18's training
# takes {glue:text}`resnet18_ratio_min:.2f` to {glue:text}`resnet18_ratio_max:.1f` times as
# long as the shared one's (median {glue:text}`resnet18_ratio_median:.2f`), the
# AlexNet-like net's {glue:text}`alexnet_like_ratio_min:.2f` to
# {glue:text}`alexnet_like_ratio_max:.1f` times. The ratio reaches
# {glue:text}`ratio_threshold:.1f`, where we call the unshared run impractical, on a share
# of {glue:text}`sweep_share_pass:.2f` of the sweep for ResNet-18 (95% bootstrap interval
# over the timing rounds {glue:text}`sweep_share_pass_lo:.2f` to
# {glue:text}`sweep_share_pass_hi:.2f`) and {glue:text}`alexnet_like_sweep_share_pass:.2f`
# ({glue:text}`alexnet_like_sweep_share_lo:.2f` to
# {glue:text}`alexnet_like_sweep_share_hi:.2f`) for the AlexNet-like net
# ({numref}`fig-imagenet-sweep`). The rule, fixed before the run: supported when at least
# {glue:text}`share_threshold:.2f` of the sweep passes, for each net.

# %% tags=["hide-input"]
glue("fig-imagenet-sweep", charts.figure(ch.chart_sweep(result), "imagenet-sweep"),
     display=False)
ch.sweep_table(result)

# %% [markdown]
# ```{glue:figure} fig-imagenet-sweep
# :name: fig-imagenet-sweep
#
# Locally connected over convolutional training time over the sweep: link bandwidth
# across, worker speed down (this device at the bottom, a P100-class GPU at the top), for
# the fewest, a middle and the most workers, and for each net and epochs factor. Red
# numbers reach the threshold. Projected from layer timings on this device (the model in
# the text), not measured end to end.
# ```
#
# ## Beside the published results
#
# Nobody trains a fully unshared ResNet-18 on ImageNet routinely, and the papers that tried
# report accuracy, not time. Bartunov et al. {cite}`bartunov_2018` trained a locally
# connected network on ImageNet with backprop to
# {glue:text}`anchor_bartunov_local_top1_error_pct:.2f`% top-1 error against
# {glue:text}`anchor_bartunov_conv_top1_error_pct:.2f`% for their convolutional network,
# and had to narrow it because replacing every convolution was too expensive, which is
# what the counts above show. Pogodin et al. {cite}`pogodin_2021` brought a locally
# connected ResNet-18 close to the convolutional one's ImageNet accuracy with an occasional
# "weight sharing" phase (averaging filters across positions); we could not confirm their
# exact top-1 numbers from a stored copy of the paper and do not quote them. DeepFace
# {cite}`taigman_2014` is the best known large network with unshared layers, over
# {glue:text}`anchor_deepface_params:,` parameters, trained on faces. These are accuracies
# on their own data; our numbers are costs on synthetic ImageNet-shaped inputs, so the two
# meet only in the epochs factor above.

# %% tags=["hide-input"]
ch.anchors_table(result)

# %% [markdown]
# What holds on any device: the arithmetic is identical, and dropping sharing multiplies
# the weights, gradients and optimizer state, {glue:text}`resnet18_weight_ratio:.0f` times
# for ResNet-18, all of which must be read and written every step and, across workers,
# communicated. How much of that becomes time depends on the device, the batch and the
# link: the sweep above shows where it does. The timings are from
# {glue:text}`device_name` with {glue:text}`threads_used` thread(s); the `gpu` profile
# repeats them on a GPU.
