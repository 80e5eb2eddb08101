"""Set every global random generator a stage or trainer can draw from, from one seed.

Sampling (``torch.multinomial``), dropout, a new head's or LoRA adapter's initial weights draw from
the global generators. Unset, they continue from whatever ran before in the same process, so under
``rlhf run`` (one process for many steps) an artifact depended on which other steps the run held.
"""

from __future__ import annotations

import random


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (torch's on every device too)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
