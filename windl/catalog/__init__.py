"""The catalog: a search index of the site's study and release datasets.

:mod:`~windl.catalog.index` reads the datasets (git only, no annexed content) into the site
database; :mod:`~windl.catalog.search` answers queries (:mod:`~windl.catalog.query`) for a
viewer, whose rights :mod:`~windl.catalog.access` decides.
"""
