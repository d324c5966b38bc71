"""heudiconv heuristic of this study.

By default it is windl's own heuristic (dcm2niix BidsGuess + reproin names when the
series follow ReproIn). To override, replace the import with your own ``infotodict``.
"""

from windl.convert.heuristic import *  # noqa: F403
