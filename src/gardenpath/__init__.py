"""gardenpath: experiments that test an essay on parameter sharing, parallelism and cortex."""

__version__ = "0.1.0"
