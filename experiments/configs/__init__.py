"""Configs of the experiment scripts (``ml_collections``, one ``get_config()`` per file, as Flax's examples).

Per application three variants: ``*_smoke`` (seconds; each runs in the test suite), ``*_cpu`` (the protocols
measured on a 2-core CPU) and ``*_lesson`` (fastai's full protocol, for a GPU or TPU). The shared fields live in
the ``base_*`` modules here; each config file's docstring holds its exact command line.
"""
