"""`video_encoder.weights: auto` against a real HTTP server on 127.0.0.1: verified, cached, or refused."""

import hashlib
import http.server
import logging
import socket
import threading

import pytest
import torch

from mvcl.features import r2plus1d as video
from mvcl.features.r2plus1d import WeightsUnavailable, build_video_encoder
from tests.helpers import save_random_r2plus1d


class Checkpoints(http.server.ThreadingHTTPServer):
    """Serves `files` (URL path -> bytes); a path in `short` announces the full length but sends only half."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.short: set[str] = set()
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if self.path in self.server.short else data)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    checkpoints = Checkpoints()
    thread = threading.Thread(target=checkpoints.serve_forever, daemon=True)
    thread.start()
    yield checkpoints
    checkpoints.shutdown()
    checkpoints.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def torch_home(tmp_path, monkeypatch):
    """Every test gets its own empty torch hub cache: the user's real one is never read or written."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def state_dict_bytes(tmp_path_factory):
    """A full r2plus1d_18 state dict as torch.save writes it, and its sha256."""
    data = save_random_r2plus1d(tmp_path_factory.mktemp("weights") / "state.pth", seed=11).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def cached_files():
    folder = video.kinetics_cache_path().parent
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_download_that_matches_its_hash_is_cached_loaded_and_recorded(server, state_dict_bytes, tmp_path):
    data, digest = state_dict_bytes
    name = f"r2plus1d_18-{digest[:8]}.pth"
    server.files[f"/mirror/{name}"] = data
    url = server.url(f"/mirror/{name}")
    encoder, record = build_video_encoder("auto", allow_random=False, seed=0, weights_url=url)
    cache = video.kinetics_cache_path(url)
    assert cached_files() == [name] and cache.read_bytes() == data
    assert record["url"] == url and record["sha256"] == digest and record["source"] == str(cache)
    assert record["weights"] == "R2Plus1D_18_Weights.KINETICS400_V1"
    saved = torch.load(cache, weights_only=True)
    assert all(torch.equal(value, saved[key]) for key, value in encoder.backbone.state_dict().items())
    # A second run reads the cache: no request reaches the server.
    server.shutdown()
    _, again = build_video_encoder("auto", allow_random=False, seed=0, weights_url=url)
    assert again == record and server.requests == [f"/mirror/{name}"]


def test_a_download_with_the_wrong_hash_is_deleted_not_cached(server, state_dict_bytes):
    data, digest = state_dict_bytes
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    server.files[f"/r2plus1d_18-{wrong}.pth"] = data
    url = server.url(f"/r2plus1d_18-{wrong}.pth")
    with pytest.raises(WeightsUnavailable) as error:
        build_video_encoder("auto", allow_random=False, seed=0, weights_url=url)
    message = str(error.value)
    assert f"sha256 {digest[:12]}... does not start with {wrong}" in message
    assert "the file was deleted, nothing was cached" in message
    assert cached_files() == []  # neither the file nor a temporary left behind


def test_a_mirror_name_without_a_hash_is_checked_against_torchvisions_hash(server):
    server.files["/weights.pth"] = b"not torchvision's checkpoint"
    url = server.url("/weights.pth")
    assert video.kinetics_cache_path(url).name == "r2plus1d_18-91a641e6.pth"
    with pytest.raises(WeightsUnavailable, match="does not start with 91a641e6"):
        build_video_encoder("auto", allow_random=False, seed=0, weights_url=url)
    assert cached_files() == []


def test_a_truncated_transfer_is_deleted_not_cached(server, state_dict_bytes, caplog):
    data, digest = state_dict_bytes
    path = f"/r2plus1d_18-{digest[:8]}.pth"
    server.files[path] = data
    server.short.add(path)
    with caplog.at_level(logging.WARNING, logger="mvcl"), pytest.raises(WeightsUnavailable) as error:
        build_video_encoder("auto", allow_random=False, seed=0, weights_url=server.url(path))
    message = str(error.value)
    assert f"came short: {len(data) // 2} of {len(data)} bytes" in message
    assert "the partial file was deleted, nothing was cached" in message
    assert "came short" in caplog.text
    assert cached_files() == []


def test_a_truncated_transfer_with_allow_random_goes_on_randomly_and_records_why(server, state_dict_bytes):
    data, digest = state_dict_bytes
    path = f"/r2plus1d_18-{digest[:8]}.pth"
    server.files[path] = data
    server.short.add(path)
    _, record = build_video_encoder("auto", allow_random=True, seed=2, weights_url=server.url(path))
    assert record["weights"] == "random" and "came short" in record["fallback_reason"]
    assert cached_files() == []


def test_a_server_that_is_down_leaves_the_cache_empty_and_says_how_to_provide_the_weights():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/r2plus1d_18-91a641e6.pth"
    with pytest.raises(WeightsUnavailable) as error:
        build_video_encoder("auto", allow_random=False, seed=0, weights_url=url)
    message = str(error.value)
    assert f"downloading {url} failed" in message and "nothing was cached" in message
    assert "Connection refused" in message
    assert f"download {url} on a machine with network access" in message
    assert "video_encoder.weights_url" in message
    assert cached_files() == []


def test_a_weights_file_whose_name_carries_a_wrong_hash_is_refused(tmp_path):
    path = tmp_path / "r2plus1d_18-00000000.pth"
    path.write_bytes(b"x")  # sha256 2d711642...
    with pytest.raises(ValueError, match="r2plus1d_18-00000000.pth: its sha256 .* corrupt"):
        build_video_encoder(str(path), allow_random=False, seed=0)
