"""Models: conv and locally connected layers and nets (``local``, ``nets``), the
sparse distributed code learner (``sdr``) and five learning rules (``rules``)."""

from gardenpath.models.local import LocallyConnected2d

__all__ = ["LocallyConnected2d"]
