"""Constants more than one module needs, named once (STYLE.md's glossary)."""

from __future__ import annotations

#: Bytes of one fp32 value: a weight, an activation, a gradient.
FP32_BYTES = 4
#: The two ways a layer can hold its weights: tied across positions, or one set per position.
SHARINGS = ("conv", "local")
