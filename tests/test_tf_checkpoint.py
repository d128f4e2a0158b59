"""The pure-Python TensorFlow checkpoint reader, against checkpoints written here byte by byte and the musicnn wheel's."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from mvcl.features.tf_checkpoint import (
    TABLE_MAGIC,
    CheckpointError,
    CheckpointReader,
    crc32c,
    parse_protobuf,
    read_block,
    read_block_handle,
    read_varint,
    unmask_crc,
)

# --------------------------------------------------------------------------------------------- a writer
# A minimal TensorBundle writer that follows leveldb/doc/table_format.md and tensor_bundle.proto, so the
# reader is tested on files whose every byte the test controls (several data blocks, restart points,
# prefix-compressed keys), not only on the one checkpoint layout TensorFlow happened to produce.

TF_DTYPE = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def mask_crc(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def block(entries: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def table(entries: dict[bytes, bytes], entries_per_block: int = 3, restart_interval: int = 2) -> bytes:
    """A LevelDB table of `entries` (sorted by key) with several data blocks."""
    out, index = bytearray(), []

    def append(contents: bytes) -> bytes:
        handle = varint(len(out)) + varint(len(contents))
        trailer = b"\x00" + struct.pack("<I", mask_crc(crc32c(contents + b"\x00")))
        out.extend(contents + trailer)
        return handle

    items = sorted(entries.items())
    for start in range(0, len(items), entries_per_block):
        chunk = items[start : start + entries_per_block]
        index.append((chunk[-1][0], append(block(chunk, restart_interval))))
    metaindex_handle = append(block([], restart_interval))
    index_handle = append(block(index, 1))
    footer = (metaindex_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out + footer)


def write_checkpoint(prefix: str | Path, variables: dict[str, np.ndarray]) -> None:
    """Write `variables` as a TensorFlow V2 checkpoint: prefix.index + prefix.data-00000-of-00001."""
    data, entries = bytearray(), {}
    for name, array in variables.items():
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        shape = b"".join(field(2, field(1, size)) for size in array.shape)
        entry = field(1, TF_DTYPE[array.dtype]) + field(2, shape) + field(4, len(data)) + field(5, len(raw))
        entry += varint(6 << 3 | 5) + struct.pack("<I", mask_crc(crc32c(raw)))  # crc32c is a fixed32
        entries[name.encode()] = entry
        data += raw
    entries[b""] = field(1, 1) + field(3, field(1, 1))  # BundleHeaderProto: one shard, little-endian
    Path(f"{prefix}.index").write_bytes(table(entries))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    "encoded, value",
    [
        (b"\x00", 0),
        (b"\x7f", 127),
        (b"\x80\x01", 128),
        (b"\xac\x02", 300),
        (b"\xff" * 9 + b"\x01", 2**64 - 1),
    ],
)
def test_varints_decode_and_report_where_they_end(encoded, value):
    assert read_varint(b"\x05" + encoded + b"\x07", 1) == (value, 1 + len(encoded))


def test_a_truncated_varint_is_an_error():
    with pytest.raises(CheckpointError, match="truncated"):
        read_varint(b"\x80\x80", 0)


def test_crc32c_matches_the_castagnoli_check_value_and_unmasks():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF):
        assert unmask_crc(mask_crc(crc)) == crc


def test_protobuf_fields_of_every_wire_type_decode():
    message = field(1, 150) + field(2, b"abc") + varint(3 << 3 | 5) + struct.pack("<I", 7)
    message += varint(4 << 3 | 1) + struct.pack("<Q", 2**40) + field(1, 3)
    assert parse_protobuf(message) == {1: [150, 3], 2: [b"abc"], 3: [7], 4: [2**40]}


def test_block_keys_are_rebuilt_from_their_shared_prefixes():
    entries = [(b"conv2d/bias", b"1"), (b"conv2d/kernel", b"22"), (b"conv2d_1/bias", b""), (b"dense", b"4")]
    contents = block(entries, restart_interval=3)
    file = contents + b"\x00" + struct.pack("<I", mask_crc(crc32c(contents + b"\x00")))
    assert read_block(file, read_block_handle(varint(0) + varint(len(contents)), 0)[0]) == entries


@pytest.fixture
def variables():
    rng = np.random.default_rng(0)
    return {
        "a/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "a/bias": rng.standard_normal(4).astype(np.float32),
        "a/bias/Adam": np.zeros(4, dtype=np.float32),
        "b/moving_mean": np.arange(5, dtype=np.float64),
        "global_step": np.array(1234, dtype=np.int64),
        "z/counts": np.arange(6, dtype=np.int32).reshape(2, 3),
    }


def test_every_variable_reads_back_with_its_dtype_shape_and_values(tmp_path, variables):
    write_checkpoint(tmp_path / "model", variables)
    reader = CheckpointReader(tmp_path / "model")
    assert reader.keys() == sorted(variables)
    assert reader.shapes() == {name: array.shape for name, array in sorted(variables.items())}
    for name, array in variables.items():
        value = reader.read(name)
        assert value.dtype == array.dtype and value.shape == array.shape
        np.testing.assert_array_equal(value, array)


def test_a_missing_variable_is_named(tmp_path, variables):
    write_checkpoint(tmp_path / "model", variables)
    with pytest.raises(KeyError, match="conv2d/kernel"):
        CheckpointReader(tmp_path / "model").read("conv2d/kernel")


def test_corrupt_tensor_bytes_fail_their_checksum(tmp_path, variables):
    write_checkpoint(tmp_path / "model", variables)
    data = tmp_path / "model.data-00000-of-00001"
    corrupted = bytearray(data.read_bytes())
    corrupted[10] ^= 0xFF  # inside a/kernel, the first variable written
    data.write_bytes(bytes(corrupted))
    reader = CheckpointReader(tmp_path / "model")
    with pytest.raises(CheckpointError, match="a/kernel.*CRC32C"):
        reader.read("a/kernel")
    np.testing.assert_array_equal(reader.read("a/bias"), variables["a/bias"])


def test_a_corrupt_index_block_fails_its_checksum(tmp_path, variables):
    write_checkpoint(tmp_path / "model", variables)
    index = tmp_path / "model.index"
    corrupted = bytearray(index.read_bytes())
    corrupted[5] ^= 0x01
    index.write_bytes(bytes(corrupted))
    with pytest.raises(CheckpointError, match="model.index.*CRC32C"):
        CheckpointReader(tmp_path / "model")


def test_a_file_that_is_not_a_table_is_rejected(tmp_path):
    (tmp_path / "model.index").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="magic"):
        CheckpointReader(tmp_path / "model")
    with pytest.raises(CheckpointError, match="not found"):
        CheckpointReader(tmp_path / "other")


@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn wheel not installed")
def test_the_musicnn_wheel_checkpoints_hold_the_expected_variables():
    folder = Path(importlib.util.find_spec("musicnn").submodule_search_locations[0])
    reader = CheckpointReader(f"{folder}/MTT_musicnn/")
    shapes = reader.shapes()
    assert shapes["conv2d/kernel"] == (7, 38, 1, 204)  # timbral 7 x int(0.4 * 96), 204 filters
    assert shapes["conv2d_2/kernel"] == (128, 1, 1, 51)  # temporal, 128 frames
    assert shapes["conv2d_5/kernel"] == (7, 561, 1, 64)  # mid end over all 561 front-end maps
    assert shapes["batch_normalization_9/gamma"] == (1506,)  # back end on interleaved max/mean pools
    assert shapes["dense_1/kernel"] == (200, 50)
    gamma = reader.read("batch_normalization_1/gamma")
    assert gamma.dtype == np.float32 and np.isfinite(gamma).all() and not np.all(gamma == 1)
    vgg = CheckpointReader(f"{folder}/MSD_vgg/").shapes()
    assert vgg["2CNN/kernel"] == (3, 3, 128, 128) and vgg["dense/kernel"] == (256, 50)
