"""Check a received dataset and wrap it in file meta, without decoding it.

:func:`scan_dataset` walks the element headers of the dataset bytes as the peer sent them
(into sequences and encapsulated pixel data), checks that every element lies inside the
bytes and that they end exactly at the last element, and returns the few top-level UIDs
the spool needs. It is about ten times faster than pydicom's ``read_dataset`` on the same bytes
(which builds an element object for each of them), and per-instance time is what a
scanner waits for. :func:`file_meta` makes the File Meta Information (PS3.10 7.1) put in
front of those bytes, so a stored file is the sender's dataset bit for bit.
"""

from __future__ import annotations

import struct
import zlib

from pydicom.uid import UID

from windl.errors import MalformedDataset

DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"

SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
WANTED = frozenset((SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID))

ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
# explicit VRs with a 2-byte reserved field and a 4-byte length
LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)


class _Walker:
    def __init__(self, data: bytes | bytearray, implicit: bool, endian: str) -> None:
        self.data = data
        self.implicit = implicit
        self.head = struct.Struct(endian + "HHI")  # tag + 4-byte length (implicit, items)
        self.tag = struct.Struct(endian + "HH")
        self.short = struct.Struct(endian + "H")
        self.long = struct.Struct(endian + "I")
        self.found: dict[int, bytes] = {}

    def elements(self, pos: int, end: int, top: bool, implicit: bool, in_item: bool) -> int:
        """Walk elements from ``pos``; return where they end (after an item delimiter)."""
        data = self.data
        while pos < end:
            if pos + 8 > end:
                raise MalformedDataset(f"truncated element header at byte {pos}")
            group, elem = self.tag.unpack_from(data, pos)
            tag = group << 16 | elem
            if tag == ITEM_END:
                if not in_item:
                    raise MalformedDataset(f"item delimiter outside an item at byte {pos}")
                return pos + 8
            vr = b""
            if implicit or group == 0xFFFE:
                length = self.long.unpack_from(data, pos + 4)[0]
                pos += 8
            else:
                vr = bytes(data[pos + 4 : pos + 6])
                if vr in LONG_VRS:
                    if pos + 12 > end:
                        raise MalformedDataset(f"truncated element header at byte {pos}")
                    length = self.long.unpack_from(data, pos + 8)[0]
                    pos += 12
                else:
                    length = self.short.unpack_from(data, pos + 6)[0]
                    pos += 8
            if length == UNDEFINED:
                # a sequence, encapsulated pixel data, or UN holding implicit VR
                pos = self.items(pos, end, implicit or vr == b"UN")
                continue
            if pos + length > end:
                raise MalformedDataset(
                    f"element ({group:04X},{elem:04X}) needs {length} bytes, "
                    f"{end - pos} left: truncated"
                )
            if top and tag in WANTED:
                self.found[tag] = data[pos : pos + length]
            pos += length
        if in_item:
            raise MalformedDataset("item without its delimiter: truncated")
        return pos

    def items(self, pos: int, end: int, implicit: bool) -> int:
        """Walk the items of an undefined-length value; return the end of its delimiter."""
        while True:
            if pos + 8 > end:
                raise MalformedDataset("sequence without its delimiter: truncated")
            group, elem, length = self.head.unpack_from(self.data, pos)
            tag = group << 16 | elem
            pos += 8
            if tag == SEQUENCE_END:
                return pos
            if tag != ITEM:
                raise MalformedDataset(f"({group:04X},{elem:04X}) where an item was expected")
            if length == UNDEFINED:
                pos = self.elements(pos, end, False, implicit, True)
            elif pos + length > end:
                raise MalformedDataset("item longer than the data: truncated")
            else:
                pos += length


def scan_dataset(data: bytes | bytearray, transfer_syntax: str) -> dict[str, str]:
    """Check ``data`` is one complete dataset; return its SOP, study and series UIDs.

    Raises
    ------
    MalformedDataset
        Empty, truncated, or not made of DICOM elements; or a UID missing.
    """
    if not data:
        raise MalformedDataset("empty dataset")
    ts = UID(transfer_syntax)
    if ts == DEFLATED:
        try:
            data = zlib.decompress(data, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise MalformedDataset(f"deflated data: {exc}") from None
    walker = _Walker(data, ts == IMPLICIT_LITTLE, ">" if ts == BIG_ENDIAN else "<")
    walker.elements(0, len(data), True, ts == IMPLICIT_LITTLE, False)
    names = {
        SOP_CLASS_UID: "sop_class",
        SOP_INSTANCE_UID: "sop_instance",
        STUDY_INSTANCE_UID: "study",
        SERIES_INSTANCE_UID: "series",
    }
    found = {}
    for tag, name in names.items():
        value = bytes(walker.found.get(tag, b"")).rstrip(b"\x00 ").decode("ascii", "replace")
        if not value:
            raise MalformedDataset(f"no {name.replace('_', ' ')} UID")
        found[name] = value
    return found


def _meta_element(elem: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr in (b"UI", b"OB") else b" "
    if vr == b"OB":
        return struct.pack("<HH2sHI", 2, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 2, elem, vr, len(value)) + value


def file_meta(
    sop_class: str,
    sop_instance: str,
    transfer_syntax: str,
    source_ae: str,
    implementation_uid: str,
    implementation_version: str,
) -> bytes:
    """Preamble, ``DICM`` and File Meta Information (explicit VR little endian)."""
    body = b"".join(
        (
            _meta_element(0x0001, b"OB", b"\x00\x01"),
            _meta_element(0x0002, b"UI", sop_class.encode("ascii")),
            _meta_element(0x0003, b"UI", sop_instance.encode("ascii")),
            _meta_element(0x0010, b"UI", transfer_syntax.encode("ascii")),
            _meta_element(0x0012, b"UI", implementation_uid.encode("ascii")),
            _meta_element(0x0013, b"SH", implementation_version.encode("ascii")),
            _meta_element(0x0016, b"AE", source_ae.encode("ascii", "replace")[:16]),
        )
    )
    group_length = _meta_element(0x0000, b"UL", struct.pack("<I", len(body)))
    return bytes(128) + b"DICM" + group_length + body


def dataset_bytes(raw: bytes) -> bytes:
    """The dataset part of a file written with :func:`file_meta` (after the meta group)."""
    if raw[128:132] != b"DICM" or raw[132:136] != b"\x02\x00\x00\x00":
        raise MalformedDataset("not a DICOM file with file meta")
    (group_length,) = struct.unpack_from("<I", raw, 140)
    return raw[144 + group_length :]
