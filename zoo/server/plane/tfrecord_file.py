"""A TFRecord file written from Python, holding the GIL throughout.

TensorFlow's `tf.io.TFRecordWriter.write` releases the GIL for its C++ write and takes it
back after: under load, every record cost the request log's writer thread a wait for the GIL
and the request threads a forced switch (py-spy: the writer spent longer waiting in `write`
than building the record). A record is small; framing it here (google-crc32c's C CRC32C,
~0.1 us) and appending it to a 1 MB buffered file costs less than that round trip, and the
operating system is called only when the buffer fills or is flushed.

The format is TensorFlow's (tensorflow/core/lib/io/record_writer.cc), read back by
`tf.data.TFRecordDataset` in the tests: a little-endian uint64 length, the masked CRC32C of
those 8 bytes, the data, the masked CRC32C of the data.
"""

from __future__ import annotations

import struct

import google_crc32c

BUFFER_BYTES = 1 << 20
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C: the CRC rotated right by 15 bits, plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as it is written: length, its CRC, the data, its CRC."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


class TFRecordFile:
    """Records appended to a new file; `flush` hands them to the operating system."""

    def __init__(self, path: str):
        self._file = open(path, "wb", buffering=BUFFER_BYTES)  # noqa: SIM115  (closed by close())

    def write(self, data: bytes) -> None:
        """Append one record (buffered)."""
        self._file.write(frame(data))

    def flush(self) -> None:
        """Write the buffer out; raises OSError on a full disk."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        self._file.close()
