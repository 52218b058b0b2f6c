"""``genre serve``: a web page and a JSON API that classify uploaded or recorded music.

The deployment demo of F. Zhang (2022), "Music Genre Classification With Deep Learning": a
person records or uploads music in a web page and sees the genre probabilities. Here the
page also shows the per-window predictions over time and the model's card (labels, training
data, split and the accuracy it measured).

Modules
-------
:mod:`~genre_cli.serve.config`
    :class:`ServeConfig`, the declared options (no web library imported).
:mod:`~genre_cli.serve.app`
    The ASGI application (Starlette) and :func:`~genre_cli.serve.app.run` (uvicorn).
:mod:`~genre_cli.serve.upload`
    Streaming multipart upload into a private folder, within the size limit.
``static/``
    The page: plain HTML, CSS and JavaScript, no external assets (labs are often offline).

Starlette, uvicorn and python-multipart are the optional extra ``serve``
(``pip install 'genre-cli[serve]'``); only the ``serve`` command imports them.
"""
