"""The five papers this toolkit implements: one home for their citations.

Code, help texts and reports cite a paper by its short form (:attr:`Paper.short`, e.g.
``Yang & Zhang 2019``); :data:`PAPERS` holds the full references, which ``genre train
--list-models`` and the README use.

Four of the five are student reports or presentations that carry no date; their year is the
year of the newest work they cite (a lower bound, marked ``c.`` in :attr:`Paper.reference`).
Yang & Zhang was published at Interspeech 2019.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    """One paper; :attr:`short` is what code and help texts cite."""

    key: str
    short: str  #: e.g. ``Yang & Zhang 2019``
    authors: str
    year: int
    title: str
    venue: str
    dated: bool = True  #: False: the paper carries no date and ``year`` is that of its newest reference

    @property
    def reference(self) -> str:
        """The full reference, as in a bibliography."""
        year = str(self.year) if self.dated else f"c. {self.year}"
        return f'{self.authors} ({year}). "{self.title}". {self.venue}.'


PUN_2020 = Paper(
    "pun2020",
    "Pun & Nazirkhanova 2020",
    "A. Pun and K. Nazirkhanova",
    2020,
    "Music Genre Classification with Mel Spectrograms and CNN",
    "Project report, Stanford University",
    dated=False,
)
ZHANG_2022 = Paper(
    "zhang2022",
    "F. Zhang 2022",
    "F. Zhang",
    2022,
    "Music Genre Classification With Deep Learning",
    "Student presentation, SCIE30001",
    dated=False,
)
SCHRADER_2021 = Paper(
    "schrader2021",
    "Schrader et al. 2021",
    "S. Schrader, D. Tucek, R. K. Sura and R. Cafarelli",
    2021,
    "Classifying Music Subgenres Using Neural Networks",
    "Final report, Southern Illinois University Edwardsville",
    dated=False,
)
VERMA_2022 = Paper(
    "verma2022",
    "Verma et al. 2022",
    "A. Verma, D. Latha, K. P. Gupta and M. G. Paul",
    2022,
    "Music Genre Classification Using CNN",
    "AI-ML course project report",
    dated=False,
)
YANG_ZHANG_2019 = Paper(
    "yang2019",
    "Yang & Zhang 2019",
    "H. Yang and W.-Q. Zhang",
    2019,
    "Music Genre Classification Using Duplicated Convolutional Layers in Neural Networks",
    "Proc. Interspeech 2019",
)

#: Every paper, by key, in the order the toolkit was built from them.
PAPERS: dict[str, Paper] = {p.key: p for p in (PUN_2020, ZHANG_2022, SCHRADER_2021, VERMA_2022, YANG_ZHANG_2019)}
