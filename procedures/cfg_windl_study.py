"""DataLad procedure: shape a new dataset into a windl study (a BIDS root).

Run by ``datalad create -c windl_study`` (windl puts this folder on
``datalad.locations.extra-procedures``). Copies the study templates, then creates the
``sourcedata`` and ``restricted`` subdatasets from their own templates, and saves.
"""

import sys
from pathlib import Path

from windl.study import shape_study_dataset

if __name__ == "__main__":
    shape_study_dataset(Path(sys.argv[1]))
