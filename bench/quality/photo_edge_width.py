"""How crisp the photo's own edges are, measured like the matte's (issue 11, remove-background at 3072 px).

The matte can only be as crisp as the photo shows its edge. This measures the photo's edge the same way
``remove_background.py`` measures the matte's (median 1/|grad| where 0.3 < a < 0.7 near the reference edge,
plain and per length) on the colour-line alpha of the photo itself: each pixel projected on the segment between
the local mean colours of ISNet's sure foreground and sure background (``matting.refine_edges``'s model), where
those colours differ (|F - B| >= 0.1), ISNet's matte elsewhere. At 1024 px (the notebook photo) and at 3072 px
(their fast-upscale x4 + Lanczos versions, cached by remove_background.py), for the three notebook photos.

    .venv/bin/python bench/quality/photo_edge_width.py
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from remove_background import PHOTOS, ROOT, edge_width, large, reference  # noqa: E402

from pixelsmith.engines.embedded import matting as M  # noqa: E402
from pixelsmith.engines.embedded.isnet import IsnetSession  # noqa: E402


def main() -> None:
    sess = IsnetSession()
    print(f"{'photo':30s} {'side':>5s} {'photo edge':>10s} {'per length':>10s} {'matte':>6s} {'per length':>10s}")
    for name in PHOTOS:
        ref = reference(name)
        for side in (1024, 3072):
            img = Image.open(ROOT / "samples" / name).convert("RGB") if side == 1024 else large(name)
            rgb = np.ascontiguousarray(np.asarray(img))
            alpha = sess.matte(img)
            if side != 1024:
                alpha = M.refine_edges(rgb, alpha)  # the recipe's matte at 3072 (a no-op at 1024)
            line = M.colour_line(rgb, alpha, side / M.MODEL_SIZE)
            ok = (line.sf > 3) & (line.sb > 3) & (line.d2 > M.MIN_CONTRAST**2)  # both means there, and apart
            photo = np.where(ok, line.ac, alpha).astype(np.float32)
            matte = np.round(alpha * 255) / 255
            print(
                f"{name:30s} {side:5d} {edge_width(photo, ref):10.2f} {edge_width(photo, ref, True):10.2f} "
                f"{edge_width(matte, ref):6.2f} {edge_width(matte, ref, True):10.2f}"
            )


if __name__ == "__main__":
    main()
