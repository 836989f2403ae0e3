"""Per-chapter logic that keeps the notebooks thin: experiments, tables, anchors, verdicts.

One module per chapter, named as its notebook. A module may define
``memory_estimate(params: dict) -> int`` (bytes): the pipeline calls it before any kernel
starts and refuses parameters whose need exceeds what the device has.
"""
