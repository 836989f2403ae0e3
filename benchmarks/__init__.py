"""Benchmarks: speed and memory of gardenpath's code against baselines and the hardware floor.

Run them with ``make bench ARGS="..."`` or ``.venv/bin/python -m benchmarks``:

* ``local``: the locally connected layer (forward + backward) against the
  unfold-broadcast formulation, Keras's two implementations, a convolution and the
  floor ``max(bytes / bandwidth, FLOPs / FLOP rate)`` measured on this device;
* ``sdr``: the single-shot learner's store and best-match times against the number of
  items stored, beside exact nearest-neighbour search;
* ``pipeline``: a cold ``python -m gardenpath build``, an unchanged rebuild and a
  one-parameter rebuild, in a scratch copy of the tree.

Each writes ``benchmarks/results/<name>.md`` and ``<name>.json`` (with the machine's
description, the date, the commit and the load average), which the book's Performance
page includes. These are measurements, not tests: they print ratios and PASS/MISS
against the goals of issue 7, and never fail a build on a timing.
"""
