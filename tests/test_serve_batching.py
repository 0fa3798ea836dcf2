"""core.run_many on the diffusers engine (what a Ray Serve ``@serve.batch`` calls): a known group of
same-shape text-to-image requests runs as one pipeline call, each keeps the image it gets alone, and
one bad request comes back as its own error. Tiny random-weight SD3 built here (no network, no Ray)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelsmith import core
from pixelsmith.errors import InvalidRequest, PixelsmithError


@pytest.fixture(scope="module")
def tiny_sd3(tmp_path_factory):
    """Only the tiny SD3.5 Large stand-in, installed with pull --from into a temporary models folder."""
    import torch

    from pixelsmith.engines.diffusers import components, tiny
    from pixelsmith.engines.diffusers.pull import pull

    root, built = tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELSMITH_MODELS", str(root))
        mp.setenv("PIXELSMITH_DIFFUSION_STEPS", "2")
        mp.setenv("PIXELSMITH_DEVICE", "cpu")
        mp.setenv("PIXELSMITH_BATCH_WINDOW_MS", "0")  # batching below comes from the group, not a time window
        tiny.build_all(built, names=["sd3.5-large"])
        components.STORE.clear()
        pull(["sd3.5-large"], source=built, log=lambda line: None)
        yield root
        components.STORE.clear()
    torch.set_num_threads(threads)


PROMPTS = (("a red cat", 11), ("a blue sky", 12), ("a green tree", 13))


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).astype(int)


def test_run_many_runs_same_shape_generates_in_one_pipeline_call(tiny_sd3):
    from pixelsmith.engines.diffusers.batching import BATCHER

    alone = [core.run("generate", {"prompt": p, "seed": s}, engine="diffusers") for p, s in PROMPTS]
    assert all(o.metadata["batch_size"] == 1 for o in alone)
    before, late = len(BATCHER.batches), BATCHER.late_groups

    outs = core.run_many([("generate", {"prompt": p, "seed": s}) for p, s in PROMPTS], engine="diffusers")

    assert BATCHER.batches[before:] == [3]  # one pipeline call for the three
    assert BATCHER.late_groups == late  # the leader knew all three had arrived; it did not time out
    assert [o.metadata["batch_size"] for o in outs] == [3, 3, 3]
    assert [o.seed for o in outs] == [s for _, s in PROMPTS]
    for one, batched in zip(alone, outs):  # each keeps its own prompt and seed (up to batch float effects)
        assert np.abs(pixels(one.image) - pixels(batched.image)).max() <= 2
    assert np.abs(pixels(outs[0].image) - pixels(outs[1].image)).max() > 10  # not one image three times


def test_a_bad_request_comes_back_as_its_error_and_the_others_still_batch(tiny_sd3):
    from pixelsmith.engines.diffusers.batching import BATCHER

    photo = Image.new("RGB", (64, 64), (200, 40, 40))
    calls = [
        ("generate", {"prompt": "a red cat", "seed": 11}),
        ("generate", {"seed": 5}),  # no prompt: refused before it reaches the batcher
        ("generate", {"prompt": "a cat", "image": photo, "strength": 0.5, "seed": 3}),  # img2img: not batched
        ("generate", {"prompt": "a blue sky", "seed": 12}),
        ("no-such-tool", {}),
    ]
    before, late = len(BATCHER.batches), BATCHER.late_groups

    outs = core.run_many(calls, engine="diffusers")

    assert isinstance(outs[1], InvalidRequest) and "prompt" in outs[1].message
    assert isinstance(outs[4], PixelsmithError) and outs[4].status == 404
    assert isinstance(outs[2], core.Output) and "batch_size" not in outs[2].metadata
    assert [outs[0].metadata["batch_size"], outs[3].metadata["batch_size"]] == [2, 2]
    assert BATCHER.batches[before:] == [2]
    assert BATCHER.late_groups == late  # the refused and the img2img requests withdrew; no one waited them out


def test_run_many_of_nothing_is_nothing():
    assert core.run_many([]) == []


# --- the Ray Serve glue that needs no cluster ----------------------------------------------------------


def test_errors_cross_from_a_replica_in_their_own_type():
    """A replica's typed error comes back as plain data and is raised again with its fields intact."""
    from pixelsmith.errors import FieldProblem, RateLimited
    from pixelsmith.jobs.ray_serve import decode_result, encode_result

    sent = InvalidRequest([FieldProblem("prompt", "is required", "missing")], accepted_fields=["prompt", "seed"])
    with pytest.raises(InvalidRequest) as info:
        decode_result("generate", encode_result(sent))
    assert info.value.details == ["prompt: is required"] and info.value.accepted_fields == ["prompt", "seed"]
    assert info.value.status == 400 and info.value.problems[0].code == "missing"
    with pytest.raises(RateLimited) as limited:
        decode_result("generate", encode_result(RateLimited("slow down", retry_after=3.0)))
    assert limited.value.retry_after == 3.0 and limited.value.message == "slow down"


def test_the_gateway_builds_the_server_from_the_settings_it_was_given(tmp_path, monkeypatch):
    from pixelsmith.api.app import SETTINGS_ENV, Settings
    from pixelsmith.errors import ToolUnavailable
    from pixelsmith.jobs.ray_serve import ENGINES_ENV, ServeBackend, build_gateway_app

    given = Settings(
        host="0.0.0.0",
        data_dir=str(tmp_path),
        rate=2.5,
        burst=7,
        queue_size=3,
        preload=True,
        engine="embedded",
        ray_address="auto",
    )
    monkeypatch.setenv(SETTINGS_ENV, given.to_env())
    monkeypatch.setenv(ENGINES_ENV, "embedded")
    app = build_gateway_app()
    settings = app.state.settings
    assert (
        settings.auth_enabled,
        settings.data_dir,
        settings.rate,
        settings.burst,
        settings.queue_size,
        settings.engine,
    ) == (True, str(tmp_path), 2.5, 7, 3, "embedded")
    assert settings.preload is False  # the tool replicas load the models, not the gateway
    backend = app.state.service.backend
    assert isinstance(backend, ServeBackend)
    with pytest.raises(ToolUnavailable, match="not deployed"):  # refused before any Ray call
        backend.run("generate", {"prompt": "a cat"}, "diffusers")

    monkeypatch.delenv(SETTINGS_ENV)  # deployed some other way: keys stay required
    monkeypatch.setenv("PIXELSMITH_DATA", str(tmp_path))
    assert build_gateway_app().state.settings.auth_enabled is True
