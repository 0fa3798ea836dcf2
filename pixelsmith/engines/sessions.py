"""The kinds of loaded model a recipe can ask for: one protocol per kind.

A recipe says what it needs, ``ctx.session("isnet-general", Matting)``, and gets a typed object back
(checked at run time: a catalogue model whose session lacks the methods is a clear TypeError, not an
AttributeError deep in a recipe). A new model of an existing kind is a session class with these methods;
a new kind is a protocol here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PIL import Image

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

    from pixelsmith.engines.embedded.mediapipe_people import Face, Pose
    from pixelsmith.engines.embedded.mobilesam import Segmentation
    from pixelsmith.engines.embedded.ssd import Detection

ProgressFn = Callable[[int, int], None]


@runtime_checkable
class Matting(Protocol):
    """Foreground matting: a soft 0..1 float32 matte at the image's size."""

    def matte(self, image: Image.Image) -> np.ndarray: ...


@runtime_checkable
class Upscaler(Protocol):
    """Super-resolution by a fixed factor (x4), tiled, reporting tiles to ``progress``."""

    def upscale(self, image: Image.Image, progress: ProgressFn | None = None) -> Image.Image: ...


@runtime_checkable
class Detector(Protocol):
    """Closed-vocabulary object detection: labelled boxes, best first."""

    def detect(self, image: Image.Image, min_score: float = 0.3) -> list[Detection]: ...


@runtime_checkable
class PeopleParser(Protocol):
    """People: a soft person mask, the main body's pose landmarks, the face meshes."""

    def person_mask(self, image: Image.Image) -> np.ndarray: ...

    def pose(self, image: Image.Image) -> Pose | None: ...

    def faces(self, image: Image.Image) -> list[Face]: ...


@runtime_checkable
class EdgeNet(Protocol):
    """An edge detector whose backbone's features can be read (HED's VGG16, for style transfer)."""

    def edges(self, image: Image.Image, max_side: int | None = None) -> np.ndarray: ...

    def features(self, rgb: Any, layers: Sequence[str]) -> dict[str, Any]: ...


@runtime_checkable
class Stylizer(Protocol):
    """Feed-forward arbitrary style transfer: a style image -> a style vector; content + vector -> stylised."""

    def style_vector(self, image: Image.Image) -> np.ndarray: ...

    def stylize(self, content: Image.Image, bottleneck: np.ndarray) -> Image.Image: ...


@runtime_checkable
class Segmenter(Protocol):
    """Promptable segmentation (Segment Anything): points (x, y, label 1/0) and/or a box -> one mask.

    ``image`` is a PIL image or the ``image_id`` of one segmented before (its embedding is cached; an id
    no longer cached raises ``KeyError``); a prompt outside the image raises ``ValueError``.
    """

    def segment(
        self,
        image: Image.Image | str,
        points: Sequence[Sequence[float]] = (),
        box: Sequence[float] | None = None,
        multimask: bool | None = None,
    ) -> Segmentation: ...


@runtime_checkable
class DiffusionCheckpoint(Protocol):
    """A diffusion checkpoint: pipelines of a kind (txt2img, img2img, inpaint), optionally with a ControlNet."""

    def pipeline(self, kind: str = "txt2img", controlnet: str | None = None) -> Any: ...
