"""Measurement: device, timing, FLOPs, bytes moved, memory, energy, roofline, communication.

Every function runs on any CPU and switches its GPU paths on by itself. Results are
dataclasses whose field names carry their units (``*_s``, ``*_bytes``, ``*_j``); a
counter the hardware does not offer is ``None``.

Modules (import them directly; nothing is imported here so ``import gardenpath.measure``
stays cheap):

* :mod:`~gardenpath.measure.device`: ``resolve_device``, ``describe``;
* :mod:`~gardenpath.measure.timing`: ``time_fn`` -> ``Timing`` (the only timer);
* :mod:`~gardenpath.measure.flops`: ``count_flops``, ``conv2d_flops``, ``local2d_flops``;
* :mod:`~gardenpath.measure.traffic`: ``layer_traffic`` -> ``Traffic``;
* :mod:`~gardenpath.measure.memory`: ``peak_memory`` -> ``MemoryPeak``;
* :mod:`~gardenpath.measure.energy`: ``EnergyMonitor``, ``model_energy``,
  ``HOROWITZ_45NM_PJ``;
* :mod:`~gardenpath.measure.roofline`: ``measure_bandwidth``, ``measure_matmul_flops``,
  ``Roofline``;
* :mod:`~gardenpath.measure.comm`: ``CommCounter``, ``ring_allreduce_time``,
  ``fit_alpha_beta``, ``halo_exchange_bytes``;
* :mod:`~gardenpath.measure.provenance`: ``collect``.
"""
