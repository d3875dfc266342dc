"""The top layer of hprobust: the ``hprobust`` command line (:mod:`hprobust.cli`).

Layers point one way, ``models <- study <- service <- hprobust``: this package may import all
of them and none of them imports it (``tests/test_layers.py`` checks it).
"""
