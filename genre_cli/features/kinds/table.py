"""``table``: a precomputed feature table imported with ``genre featurize --table CSV``.

Not computed from audio (no ``compute``): it is in the table so that models accept it as a
``vector`` input and hints name the command that makes it.
"""

from __future__ import annotations

from genre_cli.features.kind import FeatureKind, register

TABLE = register(
    FeatureKind(
        "table",
        slot="vector",
        order=70,
        hint="--table CSV",
        depends_on=(),  # imported: its values are the table's
        description="one row of an imported feature table per track (genre featurize --table)",
    )
)
