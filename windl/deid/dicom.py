"""De-identify DICOM headers per DICOM PS3.15 Annex E.

The Basic Application Level Confidentiality Profile (Table E.1-1, every row, kept as data in
:mod:`windl.deid.profile`) plus the options a study selects in its ``[deid]`` settings.
Pixel data is never decoded: it is written back byte for byte, in the file's own transfer
syntax, unless a study's blanking rule zeroes rectangles in it (:mod:`windl.deid.pixels`,
which also decides which images may show text). Images whose header says that identifying
text is burned into the pixels (``BurnedInAnnotation`` = ``YES``) are refused unblanked.

How the table's actions are carried out here:

* ``X`` remove; ``Z`` empty value; ``D`` a fixed dummy of the element's VR (a sequence keeps
  its Items, cleaned recursively, with every text value replaced by the dummy); ``U`` a UID
  from the release's :class:`UIDMap`; ``K`` keep (Items of a sequence are cleaned).
* Compound actions: ``X/Z``, ``X/D`` and ``X/Z/D`` remove (the strictest choice: windl does
  not look up each IOD's attribute types); ``Z/D`` empties; ``X/Z/U*`` keeps the sequence
  with every UID inside remapped (references between released instances stay valid).
* ``C`` (an option's "clean"): dates are shifted by the participant's offset, times kept
  (Modified Dates); UIDs are remapped; sequences keep their Items, cleaned; text is
  *replaced* by an empty value (PS3.15: "replace with values of similar meaning known not
  to contain identifying information"; what an operator typed is never kept, not even with
  known words taken out, as a name typed by hand is in no list).
* An option that says ``K`` wins over one that says ``C``, both over the Basic Profile.
* Not in the table (PS3.15 E.1.1 note 4 lets a de-identifier act by VR): dates and times
  (DA, DT, TM) are removed, or shifted with Modified Dates; UIDs that are not registered
  DICOM UIDs (SOP classes, transfer syntaxes, ...) are remapped; sequences are cleaned;
  free text (LO, SH, ST, LT, UT, PN, UC) is removed unless :data:`KEPT_TEXT` names it
  (device, coil and sequence names, codes), in every Item of every sequence too.
* Overlays (groups 60xx): the overlay data is removed (Table E.1-1), so is the rest of
  each overlay group (OverlayDescription, OverlayLabel, ...): an overlay without its data
  is only text.
* Private attributes are removed; with Retain Safe Private only those of Table E.3.10-1
  (with their Private Creator) are kept.
* PatientName and PatientID become the release's participant label; PatientIdentityRemoved,
  DeidentificationMethod, DeidentificationMethodCodeSequence (CID 7050: 113100 and the
  options' codes) and LongitudinalTemporalInformationModified are set; the File Meta
  Information and the preamble are replaced (PS3.15 E.1.1 item 7).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import logging
import os
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID_dictionary

from windl.deid.pixels import blank_dataset
from windl.deid.profile import SAFE_PRIVATE, TABLE_E1_1, ProfileRow
from windl.errors import BadInput, ConfigError

logging.getLogger("pydicom").setLevel(logging.ERROR)

try:
    __version__ = version("windl")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0"

#: CID 7050 code and meaning of the profile itself
PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")

#: the options windl implements: DeidPolicy field -> CID 7050 (code, meaning)
OPTION_CODES: dict[str, tuple[str, str]] = {
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_modified_dates": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}

#: other spellings accepted in a ``[deid]`` table (the standard's option names)
_ALIASES = {
    "retain_longitudinal_temporal_information_modified_dates": "retain_modified_dates",
    "retain_longitudinal_modified_dates": "retain_modified_dates",
    "modified_dates": "retain_modified_dates",
}

#: root of the UIDs windl issues: UUID-derived UIDs (PS3.5 B.2)
UID_ROOT = "2.25."

_IMPLEMENTATION_UID = UID_ROOT + str(uuid.uuid5(uuid.NAMESPACE_URL, "windl:implementation").int)
_IMPLEMENTATION_VERSION = f"WINDL_{__version__}"[:16]

_PIXEL_TAGS = frozenset({Tag(0x7FE0, 0x0010), Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009)})
_PATIENT_NAME = Tag(0x0010, 0x0010)
_PATIENT_ID = Tag(0x0010, 0x0020)
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_DATE_VRS = frozenset({"DA", "DT"})
#: VRs of text that people may type (PS3.5 6.2); outside Table E.1-1 they are removed
#: unless :data:`KEPT_TEXT` names the attribute
FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "PN", "UC"})
#: text attributes outside Table E.1-1 that the equipment writes from its own dictionaries
#: (device and sequence names, codes): kept. Every other free-text VR outside the table goes.
KEPT_TEXT = frozenset(
    {
        "CodeMeaning",
        "CodeValue",
        "CodingSchemeDesignator",
        "CodingSchemeVersion",
        "ContextIdentifier",
        "ContextGroupExtensionCreatorUID",
        "DeidentificationMethod",
        "DimensionDescriptionLabel",
        "ImagedNucleus",
        "LongCodeValue",
        "Manufacturer",
        "ManufacturerModelName",
        "MappingResource",
        "MappingResourceName",
        "MultiCoilElementName",
        "PulseSequenceName",
        "ReceiveCoilName",
        "RescaleType",
        "SecondaryCaptureDeviceManufacturer",
        "SecondaryCaptureDeviceManufacturerModelName",
        "SecondaryCaptureDeviceSoftwareVersions",
        "SequenceName",
        "SoftwareVersions",
        "StackID",
        "TransmitCoilManufacturerName",
        "TransmitCoilName",
    }
)
_OVERLAY_DATA = 0x3000

#: fixed dummies for action D, by VR ("OB or OW"-style VRs use their first choice)
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "00010101",
    "DS": "0",
    "DT": "00010101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "http://anonymized.invalid",
    "UT": "ANONYMIZED",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "AT": 0,
}
_DUMMY_BYTES = b"\x00\x00"

#: UI attributes outside Table E.1-1 that name a class, syntax or scheme, never an instance
_UI_KEEP_KEYWORDS = frozenset(
    {
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "EncryptedContentTransferSyntaxUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "ImplementationClassUID",
        "LongCodeValue",
    }
)

_SAFE_PRIVATE = frozenset((group, creator, elem) for group, creator, elem, _ in SAFE_PRIVATE)


class BurnedInAnnotationRefused(BadInput):
    """An image whose header says identifying text is burned into its pixels."""


@dataclass(frozen=True)
class DeidPolicy:
    """The PS3.15 Annex E options a study selects on top of the Basic Profile.

    Attributes
    ----------
    retain_modified_dates : bool
        Retain Longitudinal Temporal Information with Modified Dates (113107): dates are
        shifted by the participant's offset, keeping intervals; else removed or emptied.
    retain_patient_characteristics : bool
        Retain Patient Characteristics (113108): sex, age, size, weight, ... kept.
    retain_device_identity : bool
        Retain Device Identity (113109): station name, serial numbers, ... kept.
    retain_institution_identity : bool
        Retain Institution Identity (113112): institution name and address kept.
    clean_descriptors : bool
        Clean Descriptors (113105): series/study descriptions, protocol name, comments are
        replaced by an empty value instead of removed (their sequences are kept, cleaned).
    retain_safe_private : bool
        Retain Safe Private (113111): private attributes of Table E.3.10-1 kept; all other
        private attributes are removed either way.
    """

    retain_modified_dates: bool = False
    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    clean_descriptors: bool = False
    retain_safe_private: bool = False

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> DeidPolicy:
        """Read a policy from a ``[deid]`` table (keys may use ``-`` or ``_``).

        Parameters
        ----------
        table : Mapping[str, object] or None
            Option name -> bool; ``None`` or empty gives the Basic Profile alone.

        Returns
        -------
        DeidPolicy

        Raises
        ------
        ConfigError
            On an unknown option or a value that is not a boolean.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, bool] = {}
        for raw_key, value in (table or {}).items():
            if raw_key == "pixels" and isinstance(value, Mapping):
                continue  # [deid.pixels]: windl.deid.pixels reads it
            key = str(raw_key).strip().lower().replace("-", "_").replace(" ", "_")
            key = _ALIASES.get(key, key)
            if key not in known:
                raise ConfigError(
                    f"[deid]: unknown option {raw_key!r}; known: {', '.join(sorted(known))}"
                )
            if not isinstance(value, bool):
                raise ConfigError(f"[deid]: {raw_key} must be true or false, not {value!r}")
            values[key] = value
        return cls(**values)

    @property
    def options(self) -> tuple[str, ...]:
        """Names of the options switched on, in declaration order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code, meaning) of the profile and each selected option."""
        return [PROFILE_CODE, *(OPTION_CODES[name] for name in self.options)]


class UIDMap:
    """Release-wide, deterministic UID remapping.

    The new UID is ``2.25.`` followed by a 128-bit number derived with HMAC-SHA256 from the
    release's secret and the original UID: the same input UID gives the same output in every
    file of a release and in every re-run with the same secret; another secret (another
    release) gives unrelated UIDs; nobody without the secret can map back.

    Parameters
    ----------
    secret : str or bytes
        Per-release secret (salt). Keep it with the restricted data, never in the release.
    """

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not key:
            raise ValueError("UIDMap needs a non-empty secret")
        self._key = key
        self._issued: dict[str, str] = {}
        self._values: set[str] = set()

    def __call__(self, uid: str) -> str:
        """Return the release's UID for ``uid`` (empty stays empty)."""
        uid = str(uid).strip().rstrip("\x00")
        if not uid:
            return uid
        new = self._issued.get(uid)
        if new is None:
            digest = hmac.new(self._key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
            # an RFC 9562 version 8 (custom) UUID: 122 bits of the HMAC
            new = UID_ROOT + str(uuid.UUID(bytes=_uuid8(digest[:16])).int)
            self._issued[uid] = new
            self._values.add(new)
        return new

    @property
    def issued(self) -> Mapping[str, str]:
        """Original UID -> new UID for every UID mapped so far."""
        return dict(self._issued)

    def is_issued(self, uid: str) -> bool:
        """True if ``uid`` is one this map has handed out."""
        return str(uid).strip().rstrip("\x00") in self._values


def _uuid8(raw: bytes) -> bytes:
    value = int.from_bytes(raw, "big")
    value &= ~(0xF000 << 64)
    value |= 8 << 76  # version 8
    value &= ~(0xC000 << 48)
    value |= 0x8000 << 48  # RFC variant
    return value.to_bytes(16, "big")


# --- the table, indexed -----------------------------------------------------------------


def _index_table() -> tuple[dict[int, ProfileRow], list[tuple[int, int, ProfileRow]]]:
    exact: dict[int, ProfileRow] = {}
    patterns: list[tuple[int, int, ProfileRow]] = []
    for key, row in TABLE_E1_1.items():
        if "X" not in key:
            exact[int(key, 16)] = row
            continue
        mask = int("".join("0" if c == "X" else "F" for c in key), 16)
        value = int(key.replace("X", "0"), 16)
        patterns.append((mask, value, row))
    return exact, patterns


_EXACT, _PATTERNS = _index_table()


def profile_row(tag: int) -> ProfileRow | None:
    """The Table E.1-1 row for a (public) tag, repeating groups included, or ``None``."""
    row = _EXACT.get(int(tag))
    if row is not None:
        return row
    for mask, value, prow in _PATTERNS:
        if int(tag) & mask == value:
            return prow
    return None


def effective_action(row: ProfileRow, policy: DeidPolicy) -> str:
    """The action for ``row`` under ``policy``: an option's ``K``, else its ``C``, else Basic."""
    actions = {row.options[name] for name in policy.options if name in row.options}
    if "K" in actions:
        return "K"
    if "C" in actions:
        return "C"
    return row.basic


# --- de-identification ------------------------------------------------------------------


@dataclass
class _Context:
    policy: DeidPolicy
    uid_map: UIDMap
    offset: int


def deidentify_dataset(
    ds: Dataset,
    policy: DeidPolicy,
    uid_map: UIDMap,
    date_offset_days: int,
    new_patient_id: str,
) -> Dataset:
    """De-identify a dataset in place (and return it) per PS3.15 Annex E and ``policy``.

    Parameters
    ----------
    ds : pydicom.Dataset
        The dataset, as read; changed in place. Its pixel data is not touched.
    policy : DeidPolicy
        The options of the study.
    uid_map : UIDMap
        The release's UID map (shared by all files of the release).
    date_offset_days : int
        The participant's date shift in days; used only with ``retain_modified_dates``.
    new_patient_id : str
        The participant's release label: becomes PatientName and PatientID.

    Returns
    -------
    pydicom.Dataset
        ``ds`` itself.

    Raises
    ------
    BurnedInAnnotationRefused
        If the header declares burned-in annotation (the file must not be shipped).
    """
    _refuse_burned_in(ds, getattr(ds, "filename", None))
    if not new_patient_id:
        raise ValueError("new_patient_id must not be empty")
    ctx = _Context(policy, uid_map, int(date_offset_days))
    _clean_dataset(ds, ctx)

    ds.PatientName = new_patient_id
    ds.PatientID = new_patient_id
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _method_text(policy)
    ds.DeidentificationMethodCodeSequence = Sequence(
        [_code_item(code, meaning) for code, meaning in policy.method_codes()]
    )
    ds.LongitudinalTemporalInformationModified = (
        "MODIFIED" if policy.retain_modified_dates else "REMOVED"
    )
    if isinstance(ds, FileDataset) or getattr(ds, "file_meta", None) is not None:
        _replace_file_meta(ds)
    return ds


def deidentify_file(
    src: Path,
    dst: Path,
    policy: DeidPolicy,
    uid_map: UIDMap,
    date_offset_days: int,
    new_patient_id: str,
    *,
    blank: tuple[tuple[int, int, int, int], ...] = (),
) -> Path:
    """De-identify one DICOM file into ``dst`` (atomically), same transfer syntax and pixels.

    Parameters
    ----------
    src : Path
        A DICOM file (PS3.10: 128-byte preamble and ``DICM``).
    dst : Path
        Where to write; its folder is created. Replaced atomically, never left half-written.
    policy, uid_map, date_offset_days, new_patient_id
        As for :func:`deidentify_dataset`.
    blank : tuple of (x, y, width, height), optional
        Rectangles of a study's ``[deid.pixels]`` rule: zeroed in every frame before the
        file is written (pixels then stored uncompressed, ``BurnedInAnnotation`` NO).
        Without it the pixels are written back byte for byte.

    Returns
    -------
    Path
        ``dst``.

    Raises
    ------
    BadInput
        If ``src`` is not DICOM or cannot be read.
    BurnedInAnnotationRefused
        If ``src`` declares burned-in annotation; nothing is written.
    """
    src, dst = Path(src), Path(dst)
    if not new_patient_id:
        raise ValueError("new_patient_id must not be empty")
    raw = src.read_bytes()
    if raw[128:132] != b"DICM":
        raise BadInput("not a DICOM file (no 'DICM' marker after the 128-byte preamble)", src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(raw))
        except Exception as exc:  # pydicom raises many types on damaged bytes
            raise BadInput(f"unreadable DICOM ({type(exc).__name__})", src) from None
        if blank:
            blank_dataset(ds, blank)
        _refuse_burned_in(ds, src)
        syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
        pixels = _pixel_digest(ds)
        try:
            deidentify_dataset(ds, policy, uid_map, date_offset_days, new_patient_id)
        except BurnedInAnnotationRefused:
            raise
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise BadInput(
                f"cannot de-identify header ({type(exc).__name__}: {exc})", src
            ) from None

        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        try:
            ds.save_as(tmp, enforce_file_format=True)
            out = pydicom.dcmread(tmp)
            if str(out.file_meta.get("TransferSyntaxUID", "")) != syntax:
                raise RuntimeError(f"{src}: transfer syntax changed while writing")
            if _pixel_digest(out) != pixels:
                raise RuntimeError(f"{src}: pixel data changed while writing")
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
    return dst


def _refuse_burned_in(ds: Dataset, path: Path | str | None) -> None:
    value = ds.get("BurnedInAnnotation", "")
    if str(value or "").strip().upper() == "YES":
        raise BurnedInAnnotationRefused(
            "refused: BurnedInAnnotation is YES (identifying text may be in the pixels)",
            path if path else "<dataset>",
        )


def _pixel_digest(ds: Dataset) -> str | None:
    for tag in sorted(_PIXEL_TAGS):
        if tag in ds:
            value = ds[tag].value
            return hashlib.sha256(bytes(value) if value is not None else b"").hexdigest()
    return None


def _method_text(policy: DeidPolicy) -> list[str]:
    text = [f"windl {__version__}: DICOM PS3.15 E.1-1 Basic Profile"[:64]]
    text += [OPTION_CODES[name][1][:64] for name in policy.options]
    return text


def _code_item(code: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = code
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _replace_file_meta(ds: Dataset) -> None:
    old = getattr(ds, "file_meta", None) or FileMetaDataset()
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    sop_class = ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID", ""))
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "")
    if "TransferSyntaxUID" in old:
        meta.TransferSyntaxUID = old.TransferSyntaxUID
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    ds.file_meta = meta
    if isinstance(ds, FileDataset):
        ds.preamble = b"\x00" * 128


def _clean_dataset(ds: Dataset, ctx: _Context) -> None:
    """Apply the profile to every element of ``ds`` (and, recursively, of its Items)."""
    _clean_private(ds, ctx)
    for tag in list(ds.keys()):
        if tag.element == 0 and not tag.is_private:
            del ds[tag]  # a group length (retired): stale once elements are removed
            continue
        if tag in _PIXEL_TAGS or tag.is_private:
            continue
        elem = ds[tag]
        row = profile_row(tag)
        if row is None:
            _apply_default(ds, elem, ctx)
        else:
            _apply(ds, elem, effective_action(row, ctx.policy), ctx)
    for tag in _orphan_overlay_tags(ds):
        del ds[tag]


def _is_overlay_group(group: int) -> bool:
    return 0x6000 <= group <= 0x601E and group % 2 == 0


def _orphan_overlay_tags(ds: Dataset) -> list[BaseTag]:
    """Elements of overlay groups (60xx) whose OverlayData (60xx,3000) is not there."""
    with_data = {tag.group for tag in list(ds.keys()) if tag.element == _OVERLAY_DATA}
    return [
        tag
        for tag in list(ds.keys())
        if _is_overlay_group(tag.group) and tag.group not in with_data
    ]


def _clean_private(ds: Dataset, ctx: _Context) -> None:
    creators: dict[tuple[int, int], str] = {}
    private = [tag for tag in list(ds.keys()) if tag.is_private]  # tags, not elements
    for tag in private:
        if tag.is_private_creator:
            creators[(tag.group, tag.element)] = str(ds[tag].value or "").strip()
    kept_blocks: set[tuple[int, int]] = set()
    for tag in private:
        if tag.is_private_creator:
            continue
        block = (tag.group, tag.element >> 8)
        creator = creators.get(block)
        if (
            ctx.policy.retain_safe_private
            and creator
            and (tag.group, creator, tag.element & 0xFF) in _SAFE_PRIVATE
        ):
            kept_blocks.add(block)
            elem = ds[tag]
            if elem.VR == "SQ":
                _clean_items(elem, ctx)
        else:
            del ds[tag]
    for tag in private:
        if tag.is_private_creator and (tag.group, tag.element) not in kept_blocks:
            del ds[tag]


def _clean_by_vr(ds: Dataset, elem: DataElement, ctx: _Context) -> bool:
    """Clean what every kept element needs by VR; True if the VR was handled here.

    Sequences are cleaned item by item; dates are shifted (Modified Dates) or removed;
    times are removed unless dates are kept.
    """
    vr = elem.VR
    if vr == "SQ":
        _clean_items(elem, ctx)
    elif vr in _DATE_VRS:
        if ctx.policy.retain_modified_dates:
            _shift(ds, elem, ctx)
        else:
            del ds[elem.tag]
    elif vr == "TM":
        if not ctx.policy.retain_modified_dates:
            del ds[elem.tag]
    else:
        return False
    return True


def _clean_items(elem: DataElement, ctx: _Context) -> None:
    for item in elem.value or []:
        _clean_dataset(item, ctx)


def _apply_default(ds: Dataset, elem: DataElement, ctx: _Context) -> None:
    """Elements not in Table E.1-1: act by VR (PS3.15 E.1.1 note 4)."""
    if _is_free_text(elem):
        del ds[elem.tag]
    elif not _clean_by_vr(ds, elem, ctx) and elem.VR == "UI" and _remap_outside_table(elem):
        _remap(elem, ctx)


def _is_free_text(elem: DataElement) -> bool:
    """A free-text VR that :data:`KEPT_TEXT` does not keep (outside Table E.1-1)."""
    return elem.VR in FREE_TEXT_VRS and (keyword_for_tag(elem.tag) or "") not in KEPT_TEXT


def _instance_uid_keyword(elem: DataElement) -> bool:
    """False for UI attributes that name a class, syntax or scheme rather than an instance."""
    keyword = keyword_for_tag(elem.tag) or ""
    return not (keyword.endswith("ClassUID") or keyword in _UI_KEEP_KEYWORDS)


def _remap_outside_table(elem: DataElement) -> bool:
    if not _instance_uid_keyword(elem):
        return False
    return any(str(v).strip() and str(v).strip() not in UID_dictionary for v in _values(elem))


def _apply(ds: Dataset, elem: DataElement, action: str, ctx: _Context) -> None:
    vr = elem.VR
    if action == "K":
        if vr == "SQ":
            _clean_items(elem, ctx)
    elif action == "C":
        _clean_value(ds, elem, ctx)
    elif action == "X/Z/U*":
        if vr == "SQ":
            _clean_items(elem, ctx)
        else:
            del ds[elem.tag]
    elif action.startswith("X"):
        del ds[elem.tag]
    elif action in ("Z", "Z/D"):
        elem.value = Sequence() if vr == "SQ" else _empty(vr)
    elif action == "D":
        _dummy(elem, ctx)
    elif action == "U":
        _remap(elem, ctx)
    else:  # an action code the table does not use today: fail safe
        del ds[elem.tag]


def _clean_value(ds: Dataset, elem: DataElement, ctx: _Context) -> None:
    vr = elem.VR
    if _clean_by_vr(ds, elem, ctx):
        return
    if vr == "UI":
        _remap(elem, ctx)
    elif vr in _TEXT_VRS or vr == "UR":
        # replaced, never kept minus known words: a name typed by hand is in no list
        elem.value = _empty(vr)


def _empty(vr: str) -> Any:
    return pydicom.dataelem.empty_value_for_VR(vr)


def _dummy(elem: DataElement, ctx: _Context) -> None:
    vr = elem.VR
    if vr == "SQ":
        for item in elem.value or []:
            _clean_dataset(item, ctx)
            _dummy_text(item)
    elif vr == "UI":
        _remap(elem, ctx)
    else:
        # OB, OW, OF, OD, OL, OV, UN get bytes
        elem.value = _DUMMY.get(vr.split(" or ")[0], _DUMMY_BYTES)


def _dummy_text(ds: Dataset) -> None:
    """Inside a sequence replaced by a dummy: every text value becomes the dummy."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or []:
                _dummy_text(item)
        elif elem.VR in _TEXT_VRS and not _is_empty(elem):
            elem.value = _DUMMY[elem.VR]


def _remap(elem: DataElement, ctx: _Context) -> None:
    if _is_empty(elem):
        return
    if isinstance(elem.value, MultiValue | list | tuple):
        elem.value = [ctx.uid_map(v) for v in elem.value]
    else:
        elem.value = ctx.uid_map(elem.value)


def _shift(ds: Dataset, elem: DataElement, ctx: _Context) -> None:
    if _is_empty(elem):
        return
    shift = _shift_date if elem.VR == "DA" else _shift_datetime
    values = [shift(str(v), ctx.offset) for v in _values(elem)]
    if any(v is None for v in values):
        del ds[elem.tag]  # a date that cannot be shifted exactly is not kept
    elif isinstance(elem.value, MultiValue | list | tuple):
        elem.value = values
    else:
        elem.value = values[0]


def _shift_date(value: str, days: int) -> str | None:
    value = value.strip()
    if "-" in value:  # a range (query datasets)
        parts = [_shift_date(p, days) if p else "" for p in value.split("-", 1)]
        return None if None in parts else "-".join(p or "" for p in parts)
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        day = dt.datetime.strptime(value, "%Y%m%d").date() + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _shift_datetime(value: str, days: int) -> str | None:
    value = value.strip()
    if "-" in value[8:] and not value[8:].lstrip("0123456789.").startswith("-"):
        return None
    head = _shift_date(value[:8], days) if len(value) >= 8 else None
    return None if head is None else head + value[8:]


def _is_empty(elem: DataElement) -> bool:
    value = elem.value
    if isinstance(value, bytes | list | tuple | MultiValue | Sequence):
        return len(value) == 0
    return value is None or value == ""


def _values(elem: DataElement) -> list[Any]:
    if _is_empty(elem):
        return []
    if isinstance(elem.value, MultiValue | list | tuple):
        return list(elem.value)
    return [elem.value]


# --- checking --------------------------------------------------------------------------


def check_dataset(
    ds: Dataset,
    policy: DeidPolicy,
    *,
    uid_map: UIDMap | None = None,
    new_patient_id: str | None = None,
) -> list[str]:
    """List what in ``ds`` still holds a value that the profile says must go.

    Every element whose Table E.1-1 action under ``policy`` is remove, empty, dummy or new
    UID but holds something else is listed, in the main dataset and in every Item of every
    sequence; so are private attributes that the policy does not keep, dates and times
    outside the table (without Modified Dates), a burned-in annotation, and a missing
    de-identification record. Values an option keeps or cleans (``K``/``C``) are not judged.

    Parameters
    ----------
    ds : pydicom.Dataset
        A de-identified dataset.
    policy : DeidPolicy
        The policy it was de-identified with.
    uid_map : UIDMap, optional
        The release's map: UIDs must be ones it issued. Without it, UIDs must merely have
        windl's root (``2.25.``).
    new_patient_id : str, optional
        The participant's label: PatientName and PatientID must equal it. Without it, both
        must be equal to each other and not empty.

    Returns
    -------
    list of str
        One line per finding (``path (gggg,eeee) Keyword: what is wrong``); empty if clean.
    """
    findings: list[str] = []
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        findings.append("(0028,0301) BurnedInAnnotation: YES (the image must not be shipped)")
    if str(ds.get("PatientIdentityRemoved", "") or "") != "YES":
        findings.append("(0012,0062) PatientIdentityRemoved: not YES")
    codes = {
        str(item.get("CodeValue", "")) for item in ds.get("DeidentificationMethodCodeSequence", [])
    }
    if PROFILE_CODE[0] not in codes:
        findings.append("(0012,0064) DeidentificationMethodCodeSequence: no 113100 code")
    findings += _check_patient(ds, new_patient_id)
    _check_items(ds, policy, uid_map, "", findings, in_dummy=False)
    return findings


def _check_patient(ds: Dataset, label: str | None) -> list[str]:
    name = str(ds.get("PatientName", "") or "")
    pid = str(ds.get("PatientID", "") or "")
    if label is not None:
        return [
            f"{_where('', tag)}: {value!r} is not the release label"
            for tag, value in ((_PATIENT_NAME, name), (_PATIENT_ID, pid))
            if value != label
        ]
    if not pid or name != pid:
        return [f"{_where('', _PATIENT_NAME)}: PatientName and PatientID are not one label"]
    return []


def _where(path: str, tag: BaseTag) -> str:
    keyword = keyword_for_tag(tag) or "private"
    return f"{path}({tag.group:04X},{tag.element:04X}) {keyword}"


def _check_items(
    ds: Dataset,
    policy: DeidPolicy,
    uid_map: UIDMap | None,
    path: str,
    findings: list[str],
    *,
    in_dummy: bool,
) -> None:
    private_ok = _safe_private_tags(ds) if policy.retain_safe_private else set()
    findings += [
        f"{_where(path, tag)}: overlay group without overlay data (must be removed)"
        for tag in _orphan_overlay_tags(ds)
    ]
    for tag in list(ds.keys()):
        if tag in _PIXEL_TAGS or tag.element == 0:
            continue
        if tag.is_private:
            if tag.is_private_creator:
                if not policy.retain_safe_private:
                    findings.append(f"{_where(path, tag)}: private creator not removed")
            elif tag not in private_ok:
                findings.append(f"{_where(path, tag)}: private attribute not removed")
            continue
        if not path and tag in (_PATIENT_NAME, _PATIENT_ID):
            continue  # checked against the label
        elem = ds[tag]
        row = profile_row(tag)
        where = _where(path, tag)
        action = _default_action(elem, policy) if row is None else effective_action(row, policy)
        _check_element(elem, action, policy, uid_map, where, findings)
        if elem.VR == "SQ" and action in ("K", "C", "D", "X/Z/U*") and elem.value:
            dummy = in_dummy or action == "D"
            for i, item in enumerate(elem.value):
                _check_items(item, policy, uid_map, f"{where}[{i}].", findings, in_dummy=dummy)
        elif (
            in_dummy
            and elem.VR in _TEXT_VRS
            and any(str(v) != _DUMMY[elem.VR] for v in _values(elem))
        ):
            findings.append(f"{where}: text inside a replaced sequence is not the dummy")


def _default_action(elem: DataElement, policy: DeidPolicy) -> str:
    """What :func:`_apply_default` does, as an action code (``U?``: unregistered UIDs)."""
    if _is_free_text(elem):
        return "X"
    if elem.VR in _DATE_VRS or elem.VR == "TM":
        return "C" if policy.retain_modified_dates else "X"
    if elem.VR == "UI" and _instance_uid_keyword(elem):
        return "U?"
    return "K"


def _check_element(
    elem: DataElement,
    action: str,
    policy: DeidPolicy,
    uid_map: UIDMap | None,
    where: str,
    findings: list[str],
) -> None:
    vr = elem.VR
    if action in ("K", "X/Z/U*") and vr == "SQ":
        return
    if action == "C":
        if vr == "UI":
            _check_uids(elem, uid_map, where, findings, registered_ok=False)
        elif vr in _DATE_VRS | {"TM"} and not policy.retain_modified_dates:
            findings.append(f"{where}: must be removed")
        elif (vr in _TEXT_VRS or vr == "UR") and not _is_empty(elem):
            findings.append(f"{where}: text must be replaced (C), not kept")
        return
    if action == "K":
        return
    if action == "U?":
        _check_uids(elem, uid_map, where, findings, registered_ok=True)
    elif action.startswith("X"):
        findings.append(f"{where}: must be removed ({action})")
    elif action in ("Z", "Z/D"):
        if not _is_empty(elem) and not (vr != "SQ" and _is_dummy(elem)):
            findings.append(f"{where}: must be empty ({action})")
    elif action == "D":
        if vr == "UI":
            _check_uids(elem, uid_map, where, findings, registered_ok=False)
        elif vr != "SQ" and not _is_empty(elem) and not _is_dummy(elem):
            findings.append(f"{where}: must hold a dummy value (D)")
    elif action == "U":
        _check_uids(elem, uid_map, where, findings, registered_ok=False)


def _is_dummy(elem: DataElement) -> bool:
    base = elem.VR.split(" or ")[0]
    expected = _DUMMY.get(base, _DUMMY_BYTES)
    return all(v == expected or str(v) == str(expected) for v in _values(elem))


def _check_uids(
    elem: DataElement,
    uid_map: UIDMap | None,
    where: str,
    findings: list[str],
    *,
    registered_ok: bool,
) -> None:
    for value in _values(elem):
        uid = str(value).strip().rstrip("\x00")
        if registered_ok and uid in UID_dictionary:
            continue
        issued = uid_map.is_issued(uid) if uid_map is not None else uid.startswith(UID_ROOT)
        if not issued:
            findings.append(f"{where}: UID {uid} was not issued by the release's UID map")
            return


def _safe_private_tags(ds: Dataset) -> set[BaseTag]:
    creators = {
        (tag.group, tag.element): str(ds[tag].value or "").strip()
        for tag in list(ds.keys())
        if tag.is_private and tag.is_private_creator
    }
    safe = set()
    for tag in list(ds.keys()):
        if not tag.is_private or tag.is_private_creator:
            continue
        creator = creators.get((tag.group, tag.element >> 8))
        if creator and (tag.group, creator, tag.element & 0xFF) in _SAFE_PRIVATE:
            safe.add(tag)
    return safe


def iter_dicom_files(root: Path) -> Iterable[Path]:
    """Every file under ``root`` with the PS3.10 ``DICM`` marker, in sorted order."""
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and path.stat().st_size > 132:
            with path.open("rb") as fh:
                fh.seek(128)
                if fh.read(4) == b"DICM":
                    yield path
