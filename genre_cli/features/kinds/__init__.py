"""The feature kinds: every module here registers one or more :class:`~genre_cli.features.kind.FeatureKind`.

Modules are found and imported by :func:`genre_cli.features.kind.load`: a new feature is a new
module in this package, nothing else. Keep the imports at the top of a module light (numpy,
the toolkit's own modules); import heavy libraries (librosa, torch) inside the functions that
compute, so that ``genre --help`` stays fast.
"""
