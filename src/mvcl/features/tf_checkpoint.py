"""Read TensorFlow checkpoints (TensorBundle V2) without TensorFlow or protobuf.

A checkpoint `prefix` is two files: `prefix.index` and `prefix.data-00000-of-0000N`. The index is a LevelDB
table (TensorFlow's `tensorflow/core/lib/io/table*`): uncompressed data blocks of prefix-compressed
`key -> value` entries, an index block of block handles, and a 48-byte footer. Each key is a variable name
and each value a serialized `BundleEntryProto` (dtype, shape, shard, offset, size, masked CRC32C) that says
where the variable's raw little-endian bytes lie in the data shard. The empty key holds the
`BundleHeaderProto` (number of shards, endianness).

References: leveldb/doc/table_format.md; tensorflow/core/protobuf/tensor_bundle.proto;
tensorflow/core/util/tensor_bundle/tensor_bundle.cc.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# LevelDB's table magic number, stored little-endian in the last 8 bytes of the footer.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1-byte compression type + 4-byte masked CRC32C
NO_COMPRESSION = 0

# tensorflow/core/framework/types.proto's enum value, its name, and the numpy dtype (little-endian) of its
# tensors. Strings and resources are not tensors of bytes.
_TF_DTYPE_TABLE = """
 1  DT_FLOAT   <f4
 2  DT_DOUBLE  <f8
 3  DT_INT32   <i4
 4  DT_UINT8   u1
 5  DT_INT16   <i2
 6  DT_INT8    i1
 9  DT_INT64   <i8
10  DT_BOOL    ?
17  DT_UINT16  <u2
19  DT_HALF    <f2
22  DT_UINT32  <u4
23  DT_UINT64  <u8
"""
TF_DTYPES: dict[int, np.dtype] = {
    int(code): np.dtype(spec) for code, _name, spec in map(str.split, _TF_DTYPE_TABLE.strip().splitlines())
}
DT_STRING = 7


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or uses a feature this reader does not support."""


# --------------------------------------------------------------------------------------------- encodings
def read_varint(buffer: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; returns (value, position after it)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buffer):
            raise CheckpointError("truncated varint")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 10 bytes")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum LevelDB tables and TensorBundle entries use."""
    table = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Invert LevelDB's CRC mask (`rotate right by 15 bits, plus 0xa282ead8`)."""
    rotated = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def parse_protobuf(buffer: bytes) -> dict[int, list[int | bytes]]:
    """Decode one protobuf message into {field number: [values]} without a schema.

    Varints and fixed-width fields come back as ints, length-delimited fields as bytes (decode nested
    messages by calling this again).
    """
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buffer):
        tag, pos = read_varint(buffer, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = read_varint(buffer, pos)
        elif wire_type == 1:
            (value,) = struct.unpack_from("<Q", buffer, pos)
            pos += 8
        elif wire_type == 2:
            length, pos = read_varint(buffer, pos)
            value = bytes(buffer[pos : pos + length])
            if len(value) != length:
                raise CheckpointError("truncated length-delimited protobuf field")
            pos += length
        elif wire_type == 5:
            (value,) = struct.unpack_from("<I", buffer, pos)
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire_type} (field {number})")
        fields.setdefault(number, []).append(value)
    return fields


# --------------------------------------------------------------------------------------------- LevelDB table
@dataclass(frozen=True)
class BlockHandle:
    offset: int
    size: int


def read_block_handle(buffer: bytes, pos: int) -> tuple[BlockHandle, int]:
    offset, pos = read_varint(buffer, pos)
    size, pos = read_varint(buffer, pos)
    return BlockHandle(offset, size), pos


def read_footer(table: bytes) -> tuple[BlockHandle, BlockHandle]:
    """(metaindex handle, index handle) from a table's last 48 bytes; checks the magic number."""
    if len(table) < FOOTER_SIZE:
        raise CheckpointError("file shorter than a table footer")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"bad table magic {magic:#x} (expected {TABLE_MAGIC:#x})")
    metaindex, pos = read_block_handle(footer, 0)
    index, _ = read_block_handle(footer, pos)
    return metaindex, index


def read_block(table: bytes, handle: BlockHandle, verify: bool = True) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block, in order; keys are un-prefix-compressed."""
    end = handle.offset + handle.size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError(f"block at {handle.offset} (+{handle.size}) runs past the end of the file")
    contents = table[handle.offset : end]
    compression = table[end]
    if compression != NO_COMPRESSION:
        raise CheckpointError(
            f"block at {handle.offset} is compressed (type {compression}); only raw blocks are read"
        )
    if verify:
        (stored,) = struct.unpack_from("<I", table, end + 1)
        if crc32c(table[handle.offset : end + 1]) != unmask_crc(stored):
            raise CheckpointError(f"block at {handle.offset}: CRC32C mismatch (corrupt file)")
    if len(contents) < 4:
        raise CheckpointError(f"block at {handle.offset} is too short")
    (num_restarts,) = struct.unpack_from("<I", contents, len(contents) - 4)
    entries_end = len(contents) - 4 - 4 * num_restarts
    if entries_end < 0:
        raise CheckpointError(f"block at {handle.offset}: bad restart count {num_restarts}")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < entries_end:
        shared, pos = read_varint(contents, pos)
        non_shared, pos = read_varint(contents, pos)
        value_length, pos = read_varint(contents, pos)
        if shared > len(key):
            raise CheckpointError(
                f"block at {handle.offset}: key shares {shared} bytes of a {len(key)}-byte key"
            )
        key = key[:shared] + contents[pos : pos + non_shared]
        pos += non_shared
        value = contents[pos : pos + value_length]
        pos += value_length
        if pos > entries_end:
            raise CheckpointError(f"block at {handle.offset}: entry runs into the restart array")
        entries.append((key, value))
    return entries


def read_table(table: bytes, verify: bool = True) -> dict[bytes, bytes]:
    """Every key -> value of a LevelDB table held in memory."""
    _, index_handle = read_footer(table)
    entries: dict[bytes, bytes] = {}
    for _, encoded_handle in read_block(table, index_handle, verify):
        handle, _ = read_block_handle(encoded_handle, 0)
        entries.update(read_block(table, handle, verify))
    return entries


# --------------------------------------------------------------------------------------------- TensorBundle
@dataclass(frozen=True)
class TensorEntry:
    """Where one variable lives in the data shards (a decoded `BundleEntryProto`)."""

    name: str
    dtype: int  # TensorFlow DataType enum
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked, as stored

    @property
    def numpy_dtype(self) -> np.dtype:
        if self.dtype not in TF_DTYPES:
            raise CheckpointError(
                f"variable {self.name!r} has TensorFlow dtype {self.dtype}, which is not numeric"
            )
        return TF_DTYPES[self.dtype]


def parse_tensor_shape(buffer: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1); unknown_rank = 3."""
    fields = parse_protobuf(buffer)
    if fields.get(3, [0])[0]:
        raise CheckpointError("tensor shape of unknown rank")
    dims = []
    for encoded in fields.get(2, []):
        size = parse_protobuf(encoded).get(1, [0])[0]
        dims.append(size - (1 << 64) if size >= 1 << 63 else size)  # int64 two's complement
    return tuple(dims)


def parse_bundle_entry(name: str, buffer: bytes) -> TensorEntry:
    """BundleEntryProto: dtype = 1, shape = 2, shard_id = 3, offset = 4, size = 5, crc32c = 6, slices = 7."""
    fields = parse_protobuf(buffer)
    if 7 in fields:
        raise CheckpointError(
            f"variable {name!r} is partitioned into slices, which this reader does not support"
        )
    return TensorEntry(
        name=name,
        dtype=fields.get(1, [0])[0],
        shape=parse_tensor_shape(fields[2][0]) if 2 in fields else (),
        shard_id=fields.get(3, [0])[0],
        offset=fields.get(4, [0])[0],
        size=fields.get(5, [0])[0],
        crc32c=fields[6][0] if 6 in fields else None,
    )


class CheckpointReader:
    """Variables of a TensorFlow V2 checkpoint, read with numpy only.

    `prefix` is what `tf.train.Saver` was given, e.g. `.../MTT_musicnn/` for the musicnn wheel, whose files
    are then `.../MTT_musicnn/.index` and `.../MTT_musicnn/.data-00000-of-00001`.
    """

    def __init__(self, prefix: str | Path, verify: bool = True) -> None:
        self.prefix = str(prefix)
        self.verify = verify
        index_path = Path(self.prefix + ".index")
        if not index_path.is_file():
            raise CheckpointError(f"{index_path}: checkpoint index not found")
        try:
            table = read_table(index_path.read_bytes(), verify)
        except CheckpointError as error:
            raise CheckpointError(f"{index_path}: {error}") from error
        header = parse_protobuf(table.pop(b"", b""))
        self.num_shards = int(header.get(1, [1])[0])
        if header.get(2, [0])[0] != 0:
            raise CheckpointError(f"{index_path}: big-endian checkpoints are not supported")
        self.entries: dict[str, TensorEntry] = {}
        for key, value in table.items():
            name = key.decode("utf-8")
            self.entries[name] = parse_bundle_entry(name, value)

    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def keys(self) -> list[str]:
        return sorted(self.entries)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: entry.shape for name, entry in sorted(self.entries.items())}

    def read(self, name: str) -> np.ndarray:
        """The variable `name` as a numpy array of its stored dtype and shape."""
        if name not in self.entries:
            raise KeyError(f"{self.prefix}: no variable {name!r} in the checkpoint")
        entry = self.entries[name]
        if entry.dtype == DT_STRING:
            raise CheckpointError(
                f"{self.prefix}: variable {name!r} is a string tensor, which is not supported"
            )
        dtype = entry.numpy_dtype
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(
                f"{self.prefix}: variable {name!r} has {entry.size} bytes, expected {count * dtype.itemsize} "
                f"for shape {entry.shape} of {dtype}"
            )
        path = self.shard_path(entry.shard_id)
        with open(path, "rb") as file:
            file.seek(entry.offset)
            data = file.read(entry.size)
        if len(data) != entry.size:
            raise CheckpointError(
                f"{path}: variable {name!r} is truncated ({len(data)} of {entry.size} bytes)"
            )
        if self.verify and entry.crc32c is not None and crc32c(data) != unmask_crc(entry.crc32c):
            raise CheckpointError(f"{path}: variable {name!r} fails its CRC32C check (corrupt file)")
        return np.frombuffer(data, dtype=dtype).reshape(entry.shape).copy()
