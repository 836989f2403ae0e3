"""The essay's claims in our own words: the one wording the chapters, ledger and intro read.

Each chapter module sets ``CLAIM = claims.claim("<chapter>")``; the ledger and the synthesis
page read this module (it imports nothing heavy), never another chapter's module.
"""

from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    """A chapter's title and the claim it tests."""

    title: str
    claim: str


#: chapter -> (title, claim), in book order.
CLAIMS: dict[str, Claim] = {
    "energy": Claim("Where the energy goes",
                    "Moving data, not arithmetic, costs most of a computer's energy."),
    "sharing_moves": Claim("What sharing moves",
                           "Tied weights force a layer to move much more data than untied "
                           "ones."),
    "imagenet": Claim("ImageNet without sharing",
                      "Without sharing, training a standard ImageNet network becomes "
                      "impractical."),
    "parallelism": Claim("Machine parallelism",
                         "Parallel training of shared weights needs heavy gradient "
                         "communication."),
    "sharing_buys": Claim("What sharing buys",
                          "Networks without sharing still learn, so sharing is a "
                          "computational crutch rather than a requirement."),
    "local_learning": Claim("How local is learning?",
                            "Deep learning's rules need non-local signals, and local rules "
                            "can learn as well."),
    "one_shot": Claim("Learning in one shot",
                      "A sparse distributed code learns in one presentation and stores and "
                      "retrieves in fixed time."),
}

#: The essay's conclusion, judged by the ledger from the seven claims above.
OVERALL = Claim("Claims ledger",
                "Taken together: reliance on sharing, parallelism and non-local learning "
                "leads deep learning away from how cortex computes.")


def claim(chapter: str) -> str:
    """The claim ``chapter`` tests, in our words."""
    return CLAIMS[chapter].claim


def title(chapter: str) -> str:
    """The chapter's title."""
    return CLAIMS[chapter].title
