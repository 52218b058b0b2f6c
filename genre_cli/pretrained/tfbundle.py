"""Read TensorFlow-1 checkpoints (the "tensor bundle" format) with numpy alone.

A checkpoint ``PREFIX`` is two kinds of file:

``PREFIX.index``
    A LevelDB-format sorted table (SSTable). Its data blocks map each variable name to a
    serialised ``BundleEntryProto`` (dtype, shape, shard, byte offset, byte size, masked
    CRC32C of the bytes); the empty key holds the ``BundleHeaderProto`` (number of shards,
    endianness, version). Layout, from LevelDB's ``table_format.md``::

        [data block 1] ... [data block n] [meta-index block] [index block] [footer: 48 bytes]

    A block is a run of entries ``varint32 shared | varint32 non_shared | varint32 value_len |
    key[shared:] bytes | value bytes`` (keys prefix-compressed against the previous key),
    then ``uint32`` restart offsets and their ``uint32`` count, followed by a 5-byte trailer
    (compression type, masked CRC32C of block + type). The footer holds the meta-index and
    index block handles (varint64 offset, varint64 size) padded to 40 bytes and the magic
    ``0xdb4775248b80fb57``. The index block maps a separator key to each data block's handle.

``PREFIX.data-SSSSS-of-NNNNN``
    Raw tensor bytes (little-endian, C order) at the offsets the index gives.

Only what TF writes for plain numeric variables is supported: uncompressed blocks (TF's
``BundleWriter`` never compresses), numeric dtypes, whole (unsliced) tensors. Protobuf
messages are decoded by a small wire-format parser (varint, fixed32/64, length-delimited);
no ``protobuf`` or TensorFlow dependency. Anything malformed raises
:class:`~genre_cli.errors.CheckpointError` naming the file and what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_cli.errors import CheckpointError

#: LevelDB table magic number (last 8 bytes of the file, little-endian).
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5

#: TensorFlow ``DataType`` enum value -> little-endian numpy dtype (numeric types only).
TF_DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    8: "<c8",  # DT_COMPLEX64
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    17: "<u2",  # DT_UINT16
    18: "<c16",  # DT_COMPLEX128
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
#: Names of the DataType values we recognise but cannot read as arrays.
_UNSUPPORTED_DTYPES = {7: "string", 14: "bfloat16", 20: "resource", 21: "variant"}


# ----------------------------------------------------------------------------- CRC32C
def _crc32c_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data``, as LevelDB and TensorFlow compute it.

    Pure Python (about 0.2 s per MB): used on index blocks and on the tensors actually read.
    """
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """LevelDB/TF's masked CRC: rotate right by 15 bits and add ``0xa282ead8`` (mod 2**32)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- wire format
def _varint(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Decode a base-128 varint at ``buf[pos:end]``; returns (value, next position)."""
    result = shift = 0
    while True:
        if pos >= end:
            raise CheckpointError(f"{what}: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError(f"{what}: varint longer than 10 bytes")


def _fields(msg: bytes, what: str) -> Iterable[tuple[int, int, int | bytes]]:
    """Iterate ``(field_number, wire_type, value)`` over a serialised protobuf message.

    Values: int for varint / fixed32 / fixed64, bytes for length-delimited fields.
    """
    pos, end = 0, len(msg)
    while pos < end:
        key, pos = _varint(msg, pos, end, what)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise CheckpointError(f"{what}: protobuf field number 0")
        if wire == 0:
            value, pos = _varint(msg, pos, end, what)
        elif wire == 1:
            if pos + 8 > end:
                raise CheckpointError(f"{what}: truncated fixed64 field {field}")
            value = int.from_bytes(msg[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            n, pos = _varint(msg, pos, end, what)
            if pos + n > end:
                raise CheckpointError(f"{what}: field {field} runs past the end of its message")
            value = bytes(msg[pos : pos + n])
            pos += n
        elif wire == 5:
            if pos + 4 > end:
                raise CheckpointError(f"{what}: truncated fixed32 field {field}")
            value = int.from_bytes(msg[pos : pos + 4], "little")
            pos += 4
        else:
            raise CheckpointError(f"{what}: unsupported protobuf wire type {wire} (field {field})")
        yield field, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class BundleHeader:
    """The bundle's ``BundleHeaderProto``: shard count and byte order."""

    num_shards: int = 1
    little_endian: bool = True


@dataclass(frozen=True)
class BundleEntry:
    """One variable's ``BundleEntryProto``.

    Attributes
    ----------
    dtype : int
        TensorFlow ``DataType`` enum value (1 = float32, ...).
    shape : tuple of int
        Tensor shape (``()`` for a scalar).
    shard_id, offset, size : int
        Data file number, byte offset and byte length of the tensor.
    crc32c : int or None
        Masked CRC32C of the bytes, when recorded.
    sliced : bool
        True for a partitioned variable (not supported for reading).
    """

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool = False

    @property
    def numpy_dtype(self) -> np.dtype | None:
        """The numpy dtype of the tensor, or None if not a supported numeric type."""
        code = TF_DTYPES.get(self.dtype)
        return None if code is None else np.dtype(code)


def _parse_shape(msg: bytes, what: str) -> tuple[int, ...]:
    dims = []
    for field, wire, value in _fields(msg, what):
        if field == 2 and wire == 2:  # repeated Dim dim
            size = 0
            for f2, w2, v2 in _fields(value, what):
                if f2 == 1 and w2 == 0:
                    size = _signed64(v2)
            if size < 0:
                raise CheckpointError(f"{what}: unknown dimension ({size}) in a stored tensor")
            dims.append(size)
        elif field == 3 and wire == 0 and value:
            raise CheckpointError(f"{what}: tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, msg: bytes, where: str) -> BundleEntry:
    what = f"{where}: entry {name!r}"
    vals: dict[str, int] = {"dtype": 0, "shard_id": 0, "offset": 0, "size": 0}
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for field, wire, value in _fields(msg, what):
        if field == 1 and wire == 0:
            vals["dtype"] = value
        elif field == 2 and wire == 2:
            shape = _parse_shape(value, what)
        elif field == 3 and wire == 0:
            vals["shard_id"] = _signed64(value)
        elif field == 4 and wire == 0:
            vals["offset"] = _signed64(value)
        elif field == 5 and wire == 0:
            vals["size"] = _signed64(value)
        elif field == 6 and wire == 5:
            crc = value
        elif field == 7:
            sliced = True
    if vals["offset"] < 0 or vals["size"] < 0 or vals["shard_id"] < 0:
        raise CheckpointError(f"{what}: negative offset, size or shard id")
    return BundleEntry(vals["dtype"], shape, vals["shard_id"], vals["offset"], vals["size"], crc, sliced)


def _parse_header(msg: bytes, where: str) -> BundleHeader:
    num_shards, endian = 1, 0
    for field, wire, value in _fields(msg, f"{where}: bundle header"):
        if field == 1 and wire == 0:
            num_shards = _signed64(value)
        elif field == 2 and wire == 0:
            endian = value
    if num_shards < 1:
        raise CheckpointError(f"{where}: bundle header says {num_shards} data shards")
    return BundleHeader(num_shards=num_shards, little_endian=endian == 0)


# ----------------------------------------------------------------------------- the table
def _block(buf: bytes, handle: tuple[int, int], where: str, *, verify: bool) -> memoryview:
    offset, size = handle
    end = offset + size + BLOCK_TRAILER_SIZE
    if offset < 0 or size < 0 or end > len(buf) - FOOTER_SIZE:
        raise CheckpointError(f"{where}: block at {offset}+{size} lies outside the file ({len(buf)} bytes)")
    kind = buf[offset + size]
    if kind != 0:
        raise CheckpointError(f"{where}: block at {offset} is compressed (type {kind}); TensorFlow bundles are not")
    if verify:
        stored = int.from_bytes(buf[offset + size + 1 : end], "little")
        if mask_crc(crc32c(buf[offset : offset + size + 1])) != stored:
            raise CheckpointError(f"{where}: block at {offset} fails its CRC32C check (corrupt index)")
    return memoryview(buf)[offset : offset + size]


def _block_entries(block: memoryview, where: str) -> Iterable[tuple[bytes, bytes]]:
    """``(key, value)`` pairs of one table block, in order."""
    n = len(block)
    if n < 4:
        raise CheckpointError(f"{where}: block of {n} bytes is too short")
    num_restarts = int.from_bytes(block[n - 4 :], "little")
    limit = n - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise CheckpointError(f"{where}: block has an impossible restart count {num_restarts}")
    data = bytes(block[:limit])
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(data, pos, limit, where)
        unshared, pos = _varint(data, pos, limit, where)
        vlen, pos = _varint(data, pos, limit, where)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise CheckpointError(f"{where}: malformed block entry at byte {pos}")
        key = key[:shared] + data[pos : pos + unshared]
        pos += unshared
        yield key, data[pos : pos + vlen]
        pos += vlen


def _handle(value: bytes, where: str) -> tuple[int, int]:
    off, pos = _varint(value, 0, len(value), where)
    size, _ = _varint(value, pos, len(value), where)
    return off, size


def parse_index(index: bytes, *, where: str = "checkpoint index", verify: bool = True) -> tuple[BundleHeader, dict[str, BundleEntry]]:
    """Parse a bundle's ``.index`` table.

    Parameters
    ----------
    index : bytes
        The whole ``.index`` file.
    where : str
        Name used in error messages (e.g. the file path).
    verify : bool
        Check every block's CRC32C.

    Returns
    -------
    header : BundleHeader
    entries : dict of str to BundleEntry
        Variable name -> entry, in the table's (sorted) order.

    Raises
    ------
    CheckpointError
        Not a LevelDB table (bad magic, too short), a block outside the file, a failed
        CRC, compressed blocks, unsorted keys, malformed protobuf records, no header.
    """
    index = bytes(index)
    if len(index) < FOOTER_SIZE:
        raise CheckpointError(f"{where}: {len(index)} bytes is too short for a checkpoint index")
    magic = int.from_bytes(index[-8:], "little")
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{where}: not a TensorFlow checkpoint index (bad table magic {magic:#x})")
    footer = index[-FOOTER_SIZE:-8]
    _meta_off, pos = _varint(footer, 0, 40, where)
    _meta_size, pos = _varint(footer, pos, 40, where)
    idx_off, pos = _varint(footer, pos, 40, where)
    idx_size, pos = _varint(footer, pos, 40, where)
    index_block = _block(index, (idx_off, idx_size), where, verify=verify)
    header: BundleHeader | None = None
    entries: dict[str, BundleEntry] = {}
    last: bytes | None = None
    for _sep, handle in _block_entries(index_block, where):
        block = _block(index, _handle(handle, where), where, verify=verify)
        for key, value in _block_entries(block, where):
            if last is not None and key <= last:
                raise CheckpointError(f"{where}: keys out of order ({last!r} then {key!r})")
            last = key
            if key == b"":
                header = _parse_header(value, where)
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"{where}: variable name is not UTF-8: {key[:40]!r}") from None
            entries[name] = _parse_entry(name, value, where)
    if header is None:
        raise CheckpointError(f"{where}: no bundle header (empty key) in the index")
    return header, entries


def data_file_name(prefix: str, shard: int, num_shards: int) -> str:
    """``PREFIX.data-SSSSS-of-NNNNN``, TensorFlow's shard file name."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def read_tensors(
    index: bytes,
    shards: Mapping[int, bytes] | Callable[[int], bytes],
    *,
    names: Iterable[str] | None = None,
    where: str = "checkpoint",
    verify: bool = True,
) -> dict[str, np.ndarray]:
    """Read variables of a tensor bundle into numpy arrays.

    Parameters
    ----------
    index : bytes
        The ``.index`` file.
    shards : mapping or callable
        Shard number -> the bytes of that ``.data`` file (a callable is called once per
        shard needed).
    names : iterable of str, optional
        Variables to read (default: every numeric variable; string and other non-numeric
        variables are then skipped).
    where : str
        Name for error messages.
    verify : bool
        Check each block's and each tensor's CRC32C (about 0.2 s per MB of tensors).

    Returns
    -------
    dict of str to np.ndarray
        Native-endian arrays of the recorded shapes and dtypes (float32 for ``DT_FLOAT``),
        in the index's order.

    Raises
    ------
    CheckpointError
        A requested name is missing, its dtype is unsupported, it is partitioned, its
        byte size does not match dtype x shape, it lies outside its data file, or its
        CRC32C does not match.
    """
    header, entries = parse_index(index, where=f"{where}.index", verify=verify)
    if not header.little_endian:
        raise CheckpointError(f"{where}: big-endian bundles are not supported")
    if names is None:
        wanted = [n for n, e in entries.items() if e.numpy_dtype is not None and not e.sliced]
    else:
        wanted = list(names)
        missing = [n for n in wanted if n not in entries]
        if missing:
            raise CheckpointError(
                f"{where}: no variable(s) {missing[:5]} in the checkpoint (it has {len(entries)}: {', '.join(list(entries)[:8])}, ...)"
            )
    cache: dict[int, bytes] = {}

    def shard(i: int) -> bytes:
        if i not in cache:
            if i >= header.num_shards:
                raise CheckpointError(f"{where}: shard {i} named but the header says {header.num_shards} shards")
            try:
                cache[i] = shards[i] if isinstance(shards, Mapping) else shards(i)
            except (KeyError, FileNotFoundError):
                raise CheckpointError(f"{where}: data shard {i} of {header.num_shards} is missing") from None
        return cache[i]

    out: dict[str, np.ndarray] = {}
    for name in wanted:
        e = entries[name]
        what = f"{where}: variable {name!r}"
        dt = e.numpy_dtype
        if dt is None:
            kind = _UNSUPPORTED_DTYPES.get(e.dtype, f"DataType {e.dtype}")
            raise CheckpointError(f"{what} has unsupported dtype {kind}")
        if e.sliced:
            raise CheckpointError(f"{what} is partitioned (sliced); not supported")
        expected = dt.itemsize * int(np.prod(e.shape, dtype=np.int64))
        if e.size != expected:
            raise CheckpointError(f"{what}: {e.size} bytes recorded, {expected} expected for {dt} {e.shape}")
        data = shard(e.shard_id)
        if e.offset + e.size > len(data):
            raise CheckpointError(
                f"{what}: bytes {e.offset}..{e.offset + e.size} lie outside data shard {e.shard_id} ({len(data)} bytes; truncated?)"
            )
        raw = data[e.offset : e.offset + e.size]
        if verify and e.crc32c is not None and mask_crc(crc32c(raw)) != e.crc32c:
            raise CheckpointError(f"{what}: CRC32C mismatch (corrupt data file)")
        arr = np.frombuffer(raw, dtype=dt).reshape(e.shape)
        out[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return out


def read_checkpoint(prefix: str | Path, *, names: Iterable[str] | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """Read variables of the checkpoint ``PREFIX`` (files ``PREFIX.index``, ``PREFIX.data-*``).

    See :func:`read_tensors` for parameters and errors; a missing file raises
    :class:`CheckpointError` too.
    """
    prefix = str(prefix)
    try:
        index = Path(prefix + ".index").read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{prefix}.index: cannot be read ({exc.strerror or exc})") from None
    header, _ = parse_index(index, where=f"{prefix}.index", verify=False)

    def shard(i: int) -> bytes:
        p = data_file_name(prefix, i, header.num_shards)
        try:
            return Path(p).read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{p}: cannot be read ({exc.strerror or exc})") from None

    return read_tensors(index, shard, names=names, where=prefix, verify=verify)


__all__ = ["BundleEntry", "BundleHeader", "crc32c", "data_file_name", "mask_crc", "parse_index", "read_checkpoint", "read_tensors"]
