"""MediaPipe people models: person mask, pose landmarks, face mesh.

MediaPipe 0.10.21's Python graphs (``mp.solutions``) always load the tflite
files from mediapipe's own package folder; the tasks API cannot take the pose
and face-mesh models because they lack its metadata. So the session runs those
graphs, and first checks that the package's files are byte for byte the ones
the catalogue pins (``pixelsmith models fetch`` verifies and installs the same
files), refusing to start otherwise.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelsmith.engines.embedded import session_class
from pixelsmith.models.catalog import PypiFiles, get_model

# MediaPipe 0.10.21 logs through absl's C++ logging before anyone calls absl::InitializeLog, so its warnings go
# straight to file descriptor 2 whatever GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL or absl-py's verbosity say (tried:
# none of them silences these lines), and the wheel exports no symbol to lower the level through ctypes. So while
# a graph is built or runs, fd 2 goes to a temporary file; afterwards every line but these known notices is
# written back. PIXELSMITH_NATIVE_LOGS=1 (set by `pixelsmith --debug` and `serve --log-level debug`) keeps them.
NATIVE_LOGS_ENV = "PIXELSMITH_NATIVE_LOGS"
_NOTICES = re.compile(
    rb"inference_feedback_manager\.cc|landmark_projection_calculator\.cc|absl::InitializeLog\(\) is called"
    rb"|Created TensorFlow Lite XNNPACK delegate"
)
_stderr_lock = threading.RLock()


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hold back MediaPipe's and TF Lite's C++ notices on stderr for the duration (see _NOTICES)."""
    if os.environ.get(NATIVE_LOGS_ENV, "") not in ("", "0"):
        yield
        return
    with _stderr_lock, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not _NOTICES.search(line)]
            if kept:
                os.write(2, b"".join(kept))


# Pose landmark indices (BlazePose 33-point topology).
NOSE, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 0, 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
L_HEEL, R_HEEL, L_FOOT, R_FOOT = 29, 30, 31, 32
# Face-mesh indices of the face oval, in order around the face.
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
# Cheek and forehead points whose colour is reliably bare skin.
SKIN_SAMPLES = (50, 280, 101, 330, 151, 108, 337, 117, 346, 205, 425)


@dataclass
class Pose:
    points: np.ndarray  # 33 x 2, image pixels (may lie outside the image)
    visibility: np.ndarray  # 33, 0..1
    mask: np.ndarray | None  # HxW float32 0..1, the pose model's person mask (None when the model gave none)


@dataclass
class Face:
    points: np.ndarray  # 468 x 2, image pixels

    @property
    def oval(self) -> np.ndarray:
        return self.points[list(FACE_OVAL)]

    @property
    def outline(self) -> np.ndarray:
        """The convex hull of all 468 points: the oval, plus the nose where a turned head shows it in profile."""
        import cv2

        return cv2.convexHull(self.points.astype(np.float32))[:, 0, :]


def _verify_package_files() -> None:
    import hashlib

    import mediapipe

    spec = get_model("mediapipe-people")
    assert isinstance(spec.source, PypiFiles)
    root = pathlib.Path(mediapipe.__file__).parent.parent
    for ours, inner in spec.source.paths:
        data = (root / inner).read_bytes()
        if hashlib.sha256(data).hexdigest() != spec.files[ours]:
            raise RuntimeError(f"mediapipe's {inner} is not the catalogued file; install mediapipe==0.10.21")


@session_class("mediapipe-people")
class PeopleSession:
    model = "mediapipe-people"

    def __init__(self) -> None:
        _verify_package_files()
        # for the glog-era parts of the graphs (the absl ones need quiet_native_logs)
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with quiet_native_logs():
            import mediapipe as mp

            self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4)
        self._lock = threading.Lock()  # a graph runs one image at a time

    @staticmethod
    def _rgb(image: Image.Image) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))

    def person_mask(self, image: Image.Image) -> np.ndarray:
        """Soft mask of every person in the image (selfie segmentation), float32 0..1."""
        with self._lock, quiet_native_logs():
            out = self._selfie.process(self._rgb(image))
        return np.asarray(out.segmentation_mask, dtype=np.float32)

    def pose(self, image: Image.Image) -> Pose | None:
        """The most prominent person's 33 landmarks and mask, or None when no body is found."""
        with self._lock, quiet_native_logs():
            out = self._pose.process(self._rgb(image))
        if out.pose_landmarks is None:
            return None
        w, h = image.size
        pts = np.array([(p.x * w, p.y * h) for p in out.pose_landmarks.landmark], dtype=np.float32)
        vis = np.array([p.visibility for p in out.pose_landmarks.landmark], dtype=np.float32)
        mask = np.asarray(out.segmentation_mask, dtype=np.float32) if out.segmentation_mask is not None else None
        return Pose(pts, vis, mask)

    def faces(self, image: Image.Image) -> list[Face]:
        with self._lock, quiet_native_logs():
            out = self._mesh.process(self._rgb(image))
        w, h = image.size
        return [
            Face(np.array([(p.x * w, p.y * h) for p in f.landmark], dtype=np.float32))
            for f in (out.multi_face_landmarks or [])
        ]
