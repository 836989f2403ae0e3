"""Measurement: device, timing, FLOPs, bytes moved, memory, energy, roofline, communication.

Every function runs on any CPU and switches its GPU paths on by itself. Results are
dataclasses whose field names carry their units (``*_s``, ``*_bytes``, ``*_j``); a
counter the hardware does not offer is ``None``.
"""
