"""The jobs API's path policy and owner checks, without an HTTP server: which inputs, image fields,
output folders and URLs a submitted job may use, and whose uploads an item may serve."""

from __future__ import annotations

import pathlib

import pytest
from loopback_http import serve_files

from pixelsmith.errors import Forbidden, NotFound
from pixelsmith.jobs.manifest import Manifest, Step, WorkItem
from pixelsmith.jobs.paths import (
    ALLOW_ENV,
    PathPolicy,
    allowed_prefixes,
    owned_item,
    owned_job,
    uploaded_input,
)
from pixelsmith.jobs.store import SQLiteJobStore


def image_fields(tool: str) -> list[str]:
    return {"erase": ["image", "mask"], "fast-upscale": ["image"]}[tool]


@pytest.fixture
def root(tmp_path) -> pathlib.Path:
    (tmp_path / "svc").mkdir()
    return tmp_path / "svc"


def spool(root: pathlib.Path, tag: str, name: str) -> str:
    path = root / "inputs" / tag / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"png")
    return str(path)


def manifest(*items: WorkItem) -> Manifest:
    return Manifest(base="", output="", items=list(items))


# -- the operator's allow-list --------------------------------------------------------------------------


def test_allowed_prefixes_come_from_the_environment():
    assert allowed_prefixes({ALLOW_ENV: " /data/in , s3://bucket/in/,, "}) == ["/data/in", "s3://bucket/in/"]
    assert allowed_prefixes({}) == []
    policy = PathPolicy.from_env("/srv", {ALLOW_ENV: "/data/in"})
    assert policy.prefixes == ("/data/in",) and policy.root == pathlib.Path("/srv")


def test_nothing_is_allowed_by_default(root, tmp_path):
    policy = PathPolicy(root)
    for path in (str(tmp_path / "secret.png"), "/etc/passwd", "s3://bucket/x.png", "http://169.254.169.254/"):
        assert not policy.allowed(path)
        with pytest.raises(Forbidden, match=ALLOW_ENV):
            policy.check(path, "input")


def test_a_folder_prefix_allows_what_is_under_it_and_nothing_beside_it(root, tmp_path):
    allowed = tmp_path / "in"
    policy = PathPolicy(root, (str(allowed),))
    assert policy.allowed(str(allowed)) and policy.allowed(str(allowed / "a.png"))
    assert policy.allowed(str(allowed / "deep" / "b.png"))
    assert not policy.allowed(str(tmp_path / "in-other" / "a.png"))  # a sibling sharing the name's start
    assert not policy.allowed(str(allowed / ".." / "secret.png"))  # resolved before it is compared
    assert not policy.allowed(str(tmp_path))


def test_a_symlink_out_of_an_allowed_folder_is_refused(root, tmp_path):
    allowed = tmp_path / "in"
    allowed.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (allowed / "link.png").symlink_to(tmp_path / "secret.png")
    assert not PathPolicy(root, (str(allowed),)).allowed(str(allowed / "link.png"))


def test_url_prefixes_match_by_their_text(root):
    policy = PathPolicy(root, ("s3://bucket/in/",))
    assert policy.allowed("s3://bucket/in/a.png") and policy.allowed("s3://bucket/in/")
    assert not policy.allowed("s3://bucket/other/a.png") and not policy.allowed("s3://bucket/input/a.png")
    assert not policy.allowed("https://bucket/in/a.png")


# -- a submission -------------------------------------------------------------------------------------


def test_raw_inputs_are_checked_before_expanding(root, tmp_path):
    policy = PathPolicy(root)
    uploaded = spool(root, "t1", "0000-a.png")
    policy.check_raw_inputs([{"input": uploaded}, uploaded, {"label": "no input"}, 7], {uploaded})
    with pytest.raises(Forbidden):
        policy.check_raw_inputs(["inputs/*/*.png"], {uploaded})  # a glob over other jobs' uploads (root-relative)
    with pytest.raises(Forbidden):
        policy.check_raw_inputs([{"input": str(tmp_path / "secret.png")}], set())
    PathPolicy(root, (str(root / "inputs"),)).check_raw_inputs(["inputs/*/*.png"], set())  # allowed by the operator


def test_the_output_folder_must_be_allowed(root, tmp_path):
    PathPolicy(root).check_output_dir(None)  # the job's own folder
    with pytest.raises(Forbidden, match="output"):
        PathPolicy(root).check_output_dir(str(tmp_path / "elsewhere"))
    PathPolicy(root, (str(tmp_path / "elsewhere"),)).check_output_dir(str(tmp_path / "elsewhere" / "o"))


def test_expanded_items_use_only_this_requests_uploads_or_allowed_paths(root, tmp_path):
    policy = PathPolicy(root)
    out_root = str(root / "outputs" / "t1")
    image, mask = spool(root, "t1", "0000-a.png"), spool(root, "t1", "field-mask.png")
    ok = WorkItem(f"{out_root}/a.png", image, [Step("erase", {"mask": mask, "grow_mask": 3})], f"{out_root}/a.png")
    policy.check_manifest(manifest(ok), {image, mask}, out_root, image_fields)
    inputless = WorkItem(f"{out_root}/g.png", None, [Step("fast-upscale")], f"{out_root}/g.png")
    policy.check_manifest(manifest(inputless), set(), out_root, image_fields)

    foreign = str(tmp_path / "secret.png")
    bad_input = WorkItem(f"{out_root}/b.png", foreign, [Step("fast-upscale")], f"{out_root}/b.png")
    with pytest.raises(Forbidden, match="input"):
        policy.check_manifest(manifest(bad_input), {image}, out_root, image_fields)
    bad_mask = WorkItem(f"{out_root}/c.png", image, [Step("erase", {"mask": foreign})], f"{out_root}/c.png")
    with pytest.raises(Forbidden, match="mask"):
        policy.check_manifest(manifest(bad_mask), {image}, out_root, image_fields)
    escape = WorkItem(f"{out_root}/../../x.png", image, [Step("fast-upscale")], f"{out_root}/../../x.png")
    with pytest.raises(Forbidden, match="outside the job's output folder"):
        policy.check_manifest(manifest(escape), {image}, out_root, image_fields)
    beside = WorkItem(f"{out_root}-evil/x.png", image, [Step("fast-upscale")], f"{out_root}-evil/x.png")
    with pytest.raises(Forbidden, match="outside"):
        policy.check_manifest(manifest(beside), {image}, out_root, image_fields)
    allowed = PathPolicy(root, (str(tmp_path),))
    allowed.check_manifest(manifest(bad_input, bad_mask), {image}, out_root, image_fields)


def test_the_default_image_fields_come_from_the_tool_registry(root, tmp_path):
    out_root = str(root / "outputs" / "t1")
    image = spool(root, "t1", "0000-a.png")
    item = WorkItem(f"{out_root}/a.png", image, [Step("erase", {"mask": str(tmp_path / "m.png")})], f"{out_root}/a.png")
    with pytest.raises(Forbidden, match="mask"):
        PathPolicy(root).check_manifest(manifest(item), {image}, out_root)


# -- uploads and owners ---------------------------------------------------------------------------------


def test_spooled_is_only_a_file_directly_in_this_jobs_spool(root, tmp_path):
    policy = PathPolicy(root)
    mine, theirs = spool(root, "t1", "0000-a.png"), spool(root, "t2", "0000-a.png")
    assert policy.spooled("t1", mine) == pathlib.Path(mine).resolve()
    assert policy.spooled("t1", theirs) is None  # another job's upload
    assert policy.spooled(None, mine) is None and policy.spooled("", mine) is None  # a job without a spool
    assert policy.spooled("t1", str(root / "inputs" / "t1" / ".." / "t2" / "0000-a.png")) is None
    assert policy.spooled("t1", str(root / "inputs" / "t1" / "missing.png")) is None
    assert policy.spooled("t1", "s3://bucket/inputs/t1/0000-a.png") is None
    assert policy.spooled("t1", 3) is None
    (root / "inputs" / "t1" / "sub").mkdir()
    nested = root / "inputs" / "t1" / "sub" / "x.png"
    nested.write_bytes(b"x")
    assert policy.spooled("t1", str(nested)) is None
    (root / "inputs" / "t1" / "link.png").symlink_to(tmp_path / "outside.png")
    (tmp_path / "outside.png").write_bytes(b"x")
    assert policy.spooled("t1", str(root / "inputs" / "t1" / "link.png")) is None  # resolves out of the spool


@pytest.fixture
def store(tmp_path) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "jobs.db")


def test_an_item_serves_only_the_files_its_own_upload_spooled(root, store, tmp_path):
    policy = PathPolicy(root)
    image, mask = spool(root, "t1", "0000-a.png"), spool(root, "t1", "field-mask.png")
    out = str(root / "outputs" / "t1" / "a.png")
    job, _ = store.create_job(
        [WorkItem(out, image, [Step("erase", {"mask": mask, "grow_mask": 3})], out)],
        owner="alice",
        meta={"kind": "run", "spool": "t1"},
    )
    [item] = store.items(job)
    status = owned_job(store, job, "alice")
    assert policy.uploaded_inputs(status, item) == {
        "input": pathlib.Path(image).resolve(),
        "mask": pathlib.Path(mask).resolve(),
    }
    assert uploaded_input(policy, store, job, item.id, "mask", "alice") == pathlib.Path(mask).resolve()
    for name in ("grow_mask", "tool", "output", "image"):
        with pytest.raises(NotFound):
            uploaded_input(policy, store, job, item.id, name, "alice")
    with pytest.raises(NotFound):  # another key: as if the job did not exist
        uploaded_input(policy, store, job, item.id, "input", "bob")
    with pytest.raises(NotFound):
        uploaded_input(policy, store, job, item.id, "input", None)

    # a job naming another job's spooled files (or the server's) as its own paths serves none of them
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    foreign, _ = store.create_job(
        [WorkItem(str(tmp_path / "o.png"), str(secret), [Step("erase", {"mask": image})], str(tmp_path / "o.png"))],
        owner="alice",
        meta={"kind": "run", "spool": "not-a-spool"},
    )
    [fitem] = store.items(foreign)
    assert policy.uploaded_inputs(owned_job(store, foreign, "alice"), fitem) == {}
    with pytest.raises(NotFound):  # an item id of another job is not served through this one
        uploaded_input(policy, store, foreign, item.id, "input", "alice")


def test_owned_job_hides_other_keys_jobs_like_missing_ones(store):
    job, _ = store.create_job([], owner="alice")
    anonymous, _ = store.create_job([])
    assert owned_job(store, job, "alice").id == job
    assert owned_job(store, anonymous, None).id == anonymous
    for owner in ("bob", None):
        with pytest.raises(NotFound) as hidden:
            owned_job(store, job, owner)
        with pytest.raises(NotFound) as missing:
            owned_job(store, "no-such-job", owner)
        assert hidden.value.message == f"no job {job}" and missing.value.message == "no job no-such-job"
    with pytest.raises(NotFound):
        owned_job(store, anonymous, "alice")  # a keyed caller does not see the keyless jobs either


def test_owned_item_refuses_an_item_of_another_job(store):
    out = "/tmp/o.png"
    a, _ = store.create_job([WorkItem(out, "/tmp/i.png", [Step("fast-upscale")], out)], owner="alice")
    b, _ = store.create_job([WorkItem(out, "/tmp/i.png", [Step("fast-upscale")], out)], owner="alice")
    [item_a], [item_b] = store.items(a), store.items(b)
    status_a = owned_job(store, a, "alice")
    assert owned_item(store, status_a, item_a.id).id == item_a.id
    with pytest.raises(NotFound):
        owned_item(store, status_a, item_b.id)
    with pytest.raises(NotFound):
        owned_item(store, status_a, 10**9)


# -- URLs: normalised before the prefix check, dot segments refused, no redirects followed ----------------


@pytest.fixture(scope="module")
def http_files():
    """A loopback HTTP server: /pub/ok.png (allowed), /private.png (not), /pub/away (302 to /private.png)."""
    files = {"/pub/ok.png": b"public", "/private.png": b"private"}
    with serve_files(files, redirects={"/pub/away": "/private.png"}) as url:
        yield url


DOT = "has a dot segment or an encoded separator ('.', '..', '%2e%2e', '%2f' ...); give the path without it"


@pytest.mark.parametrize(
    "tail",
    [
        "/pub/../private.png",
        "/pub/%2e%2e/private.png",
        "/pub/%2E%2e/private.png",
        "/pub/.%2E/private.png",
        "/pub/%252e%252e/private.png",
        "/pub/..%2fprivate.png",
        "/pub/./ok.png",
    ],
)
def test_a_url_with_a_dot_segment_is_refused_outright(root, http_files, tail):
    policy = PathPolicy(root, (f"{http_files}/pub/",))
    url = http_files + tail
    assert not policy.allowed(url)
    with pytest.raises(Forbidden) as refused:
        policy.check(url, "input")
    assert refused.value.message == f"input {url!r} {DOT}"
    assert refused.value.status == 403


def test_urls_are_compared_in_their_canonical_form(root, http_files):
    port = http_files.rsplit(":", 1)[1]
    policy = PathPolicy(root, (f"{http_files}/pub/", "http://Example.COM/pub/", "https://cdn.example.com:443/in/"))
    assert policy.allowed(f"HTTP://127.0.0.1:{port}/pub/ok.png")
    assert policy.allowed("http://example.com:80/pub/a.png") and policy.allowed("http://EXAMPLE.com./pub/a.png")
    assert policy.allowed("https://cdn.example.com/in/a%2Dpng") and policy.allowed("https://cdn.example.com/in/%61.png")
    assert not policy.allowed(f"{http_files}/private.png")
    assert not policy.allowed("http://example.com:8080/pub/a.png")  # another port is another server
    assert not policy.allowed("http://EXAMPLE.COM/private.png") and not policy.allowed("http://example.com:80/x.png")
    assert not policy.allowed("http://example.com.evil.test/pub/a.png")
    with pytest.raises(Forbidden, match="has user info"):
        policy.check(f"http://127.0.0.1:{port}@evil.test/pub/ok.png", "input")


def test_an_allowed_url_is_fetched_and_a_redirect_is_not_followed(http_files):
    from pixelsmith.jobs.execute import ItemFailed, read_bytes

    assert read_bytes(f"{http_files}/pub/ok.png") == b"public"  # the allowed file still works
    with pytest.raises(ItemFailed) as refused:
        read_bytes(f"{http_files}/pub/away")
    assert str(refused.value) == (
        f"{http_files}/pub/away answered a redirect (302) to '{http_files}/private.png'; redirects are not followed"
    )
    assert not refused.value.transient
