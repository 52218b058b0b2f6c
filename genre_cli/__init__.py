"""genre_cli — music genre classification as cached, self-describing pipeline stages.

Importing this package is cheap: heavy libraries (torch, librosa, sklearn) are only
imported inside the functions that need them, so ``genre --help`` stays fast.
"""

__version__ = "0.1.0"
