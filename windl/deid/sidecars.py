"""De-identify what a BIDS study holds besides DICOM: JSON sidecars, TSV dates, NIfTI headers.

The same :class:`~windl.deid.dicom.DeidPolicy` that governs the DICOM headers governs these
files, so a release says the same thing in every file:

* **JSON sidecars** (dcm2niix, heudiconv, mne-bids, hand-written): every top-level key is
  looked up in :data:`SIDECAR_KEYS`, a classification kept here as data. It was made by
  running the real dcm2niix (``dcm2niix -b o``, with and without ``-ba n``) over every DICOM
  file in the project's shared test data (Siemens, GE, Philips classic and enhanced, nine
  transfer syntaxes) and classifying every key it wrote; then every key that dcm2niix's
  source (``console/nii_dicom_batch.cpp``) can write, every key of the sidecars mne-bids
  writes for BrainVision, EDF and FIF, every key of the BIDS examples in the shared data,
  and the keys heudiconv adds. A test re-runs dcm2niix on the shared data and fails on any
  key that is not classified. Where a key carries a DICOM attribute, its category follows
  that attribute's row of PS3.15 Table E.1-1 (a test checks it):

  ``keep``
      acquisition parameters and provenance: kept.
  ``remove``
      names, IDs, birth date, accession number, UIDs: removed whatever the options (DICOM
      remaps UIDs per release; a sidecar has no use for them).
  ``shift``
      dates and times: with Retain Modified Dates a date (or the date part of a date-time)
      is shifted by the participant's offset, a time of day is kept (a shift by whole
      days leaves it unchanged); without it they are removed. A value that cannot be read
      as a date is removed, never kept unshifted.
  ``device``
      station name, device serial number: kept only with Retain Device Identity.
  ``institution``
      institution name, address, department: kept only with Retain Institution Identity.
  ``patient``
      age, sex, size, weight: kept only with Retain Patient Characteristics.
  ``descriptor``
      series/study/protocol descriptions, image and conversion comments, task
      descriptions and instructions, artefact descriptions: text people type. Removed,
      whatever the options: PS3.15's Clean Descriptors means *replace with a
      non-identifying value*, and a sidecar key can simply be left out (``TaskName``, the
      vetted label, is the task's name in a release).
  ``typed``
      EEG/MEG keys an operator may type into (``EEGReference``, ``EEGGround``,
      ``EEGPlacementScheme``, the cap, ``SoftwareFilters``, ``HardwareFilters``,
      ``RecordingType``, ``DewarPosition``): numbers, ``n/a``, the values BIDS defines
      (:data:`TYPED_VALUES`) and filter tables with numeric values (:data:`FILTER_WORDS`)
      are kept, anything else becomes ``n/a`` (the key stays: BIDS requires some of them).

  Default-deny: a key found in no list is *removed* (:func:`unclassified_keys` names it,
  so a new converter's keys are seen and classified). Data dictionaries of tables
  (``*_events.json``, ``phenotype/*.json``, ... see :func:`is_table_dictionary`) are not
  recording sidecars: their keys are column names, kept unless classified otherwise; the
  release's table rules judge them.
  heudiconv's dcmstack dumps (``global``, ``time``, ``slices``, ``vector`` beside
  ``dcmmeta_*`` keys) hold whole DICOM headers and are removed.
* **TSV files**: ``acq_time`` of ``*_scans.tsv`` (and any column whose values are all ISO
  dates) shifted or set to ``n/a``; the ``operator`` column heudiconv writes is removed.
* **NIfTI headers**: ``descrip`` (dcm2niix writes the acquisition time there),
  ``aux_file``, ``db_name``, ``data_type`` and ``intent_name`` are blanked, the unused
  ANALYZE number fields zeroed, every header extension and anything after the voxels
  dropped; the voxel bytes, the affine and every other header field are kept as they
  are; ``.nii.gz`` is written with a fixed gzip header (mtime 0, no name).

Everything here reads a source and writes a *new* file (atomically); a study is never
changed in place.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from windl.deid.dicom import DeidPolicy
from windl.deid.required import required_keys, safe_value
from windl.errors import BadInput
from windl.files import atomic_write

#: categories of :data:`SIDECAR_KEYS` (see the module docstring)
CATEGORIES: Final = (
    "keep",
    "remove",
    "shift",
    "device",
    "institution",
    "patient",
    "descriptor",
    "typed",
)

_KEEP = """
    AccelFact3D AcquisitionDuration AcquisitionMatrixPE AcquisitionNumber AcquisitionVoxelSize
    AnatomicalLandmarkCoordinateSystem AnatomicalLandmarkCoordinateUnits
    AnatomicalLandmarkCoordinates ArterialSpinLabelingType AssociatedEmptyRoom
    AttenuationCorrectionMethod Authors AveragesDouble BIDSVersion BandwidthPerPixelPhaseEncode
    BaseResolution BodyPart BolusDuration
    CodeMeaning CodeValue CodingSchemeDesignator CodingSchemeVersion CogAtlasID
    CoilCombinationMethod CoilString Columns CompressedSensingFactor ConsistencyInfo
    ContinuousHeadLocalization ConversionSoftware ConversionSoftwareVersion ConvolutionKernel
    DecayCorrection DecayFactor DeepLearning DeepLearningDetails DeidentificationMethod
    DeidentificationMethodCodeSequence DelayTime DerivedVendorReportedEchoSpacing
    DiffGradientCyclingGE DiffusionScheme DigitizedHeadPoints DigitizedHeadPointsCoordinateSystem
    DigitizedHeadPointsCoordinateUnits
    DigitizedLandmarks Dosage DoseCalibrationFactor DwellTime ECGChannelCount EEGChannelCount
    EEGCoordinateSystem EEGCoordinateUnits
    EMGChannelCount EOGChannelCount EPIFactor EchoNumber
    EchoSpacingMicroSecondsGE EchoTime EchoTime1 EchoTime2 EchoTrainDuration EchoTrainLength
    EffectiveEchoSpacing EpochLength EstimatedEffectiveEchoSpacing EstimatedTotalReadoutTime
    ExposureTime FlipAngle FmriExternalInfo FrameDuration FrameReferenceTime FrameTimesStart
    FrequencyEncodingSteps HeadCoilCoordinateSystem
    HeadCoilCoordinateUnits HeadCoilCoordinates
    HeadCoilFrequency HeudiconvVersion ImageOrientationPatientDICOM ImageOrientationText
    ImageType ImageTypeText ImagingFrequency InPlanePhaseEncodingDirectionDICOM
    InitialPostLabelDelay InjectedRadioactivity InjectedRadioactivityUnits InjectedVolume
    IntendedFor InternalPulseSequenceName Interpolation2D Interpolation3D InversionTime
    IsotopeHalfLife LabelingDistance LabelingDuration LabelingPulseAverageGradient
    LabelingPulseDuration LabelingPulseFlipAngle LabelingPulseMaximumGradient M0Type
    MEGChannelCount MEGCoordinateSystem MEGCoordinateUnits
    MEGREFChannelCount MRAcquisitionType MTState MagneticFieldStrength Manufacturer
    ManufacturersModelName MatrixCoilMode MaxMovement MaximumT1Opt MeanGzx10 MiscChannelCount
    Modality ModalityLabel MultibandAccelerationFactor Name NonlinearGradientCorrection
    NotPhysicalNumberOfAcquiredPELinesGE NotPhysicalTotalReadOutTimeGE NumRFBlocks NumberOfArms
    NumberOfAverages NumberOfDiffusionDirectionGE NumberOfDiffusionT2GE NumberOfExcitations
    NumberOfKSpaceTrajectories NumberOfPointsPerArm PASLType ParallelAcquisitionTechnique
    ParallelReductionFactorInPlane ParallelReductionFactorOutOfPlane PartialFourier
    PartialFourierDirection PartialFourierEnabled PatientPosition PercentPhaseFOV
    PercentSampling PhaseEncodingAxis PhaseEncodingDirection PhaseEncodingDirectionDisplayed
    PhaseEncodingPolarityGE PhaseEncodingSteps PhaseEncodingStepsNoPartialFourier
    PhaseEncodingStepsOutOfPlane PhaseOversampling PhaseResolution PhiAdjust
    PhilipsRWVIntercept PhilipsRWVSlope PhilipsRescaleIntercept PhilipsRescaleSlope
    PhilipsScaleSlope PixelBandwidth PostInversionDelay PostLabelingDelay PowerLineFrequency
    PrescanReuseString PulseSequenceDetails PulseSequenceName PulseSequenceType Quadruped RFGap
    RadionuclideHalfLife RadionuclidePositronFraction Radiopharmaceutical RawImage
    ReceiveCoilActiveElements ReceiveCoilName ReconFilterSize ReconMatrixPE ReconMethodName
    ReconMethodParameterLabels ReconMethodParameterValues ReconstructionMethod
    RecordingDuration RefLinesPE RepetitionTime RepetitionTimeExcitation
    RepetitionTimeInversion RepetitionTimePreparation SAR SamplingFrequency SaturationStopTime
    ScanOptions ScanningSequence ScatterFraction SequenceName SequenceVariant SeriesNumber
    ShimSetting SliceEncodingDirection SliceThickness SliceTiming
    SoftwareVersions Sources SpacingBetweenSlices SpoilingState SpoilingType StartTime T1
    TablePosition TagDuration TagPlaneDThickness TagPlaneSNormalDTra TagPlaneSPositionDTra
    TagPlaneUlShape TagRFDuration TagRFFlipAngle TagRFSeparation TaskName
    TensorFileNumberGE TotalAcquiredPairs TotalReadoutTime TracerRadionuclide
    TriggerChannelCount TriggerDelayTime TxRefAmp Units UsePhilipsFloatNotDisplayScaling
    VariableFlipAngleFlag VendorReportedEchoSpacing WaterFatShift WipMemBlock XRayExposure
    XRayTubeCurrent
    dcmmeta_affine dcmmeta_reorient_transform dcmmeta_shape dcmmeta_slice_dim dcmmeta_version
    BackgroundSuppression BolusCutOffDelayTime BolusCutOffFlag BolusCutOffTechnique M0Estimate
    PixelSize
    DispersionCorrected ImageDecayCorrected ImageDecayCorrectionTime InfusionRadioactivity
    InfusionSpeed InfusionSpeedUnits InfusionStart InjectedMass InjectedMassUnits
    InjectionStart MetaboliteAvail MetaboliteRecoveryCorrectionApplied ModeOfAdministration
    PlasmaAvail ReconFilterType ReconMethodParameterUnits ScanStart SpecificRadioactivity
    SpecificRadioactivityUnits TracerName WholeBloodAvail
"""

_REMOVE = """
    AccessionNumber IssuerOfPatientID MedicalRecordLocator NameOfPhysiciansReadingStudy
    OperatorsName OtherPatientIDs OtherPatientNames PatientAddress PatientBirthDate
    PatientBirthName PatientBirthTime PatientID PatientMotherBirthName PatientName
    PatientTelephoneNumbers PerformingPhysicianName PhysiciansOfRecord ReferringPhysicianName
    RequestingPhysician SeriesInstanceUID SOPInstanceUID StudyID StudyInstanceUID
    FrameOfReferenceUID
"""

_SHIFT = """
    AcquisitionDate AcquisitionDateTime AcquisitionTime ContentDate ContentTime SeriesDate
    SeriesDateTime SeriesTime StudyDate StudyDateTime StudyTime TimeZero
"""

_DEVICE = "DeviceSerialNumber StationName"

_INSTITUTION = "InstitutionAddress InstitutionName InstitutionalDepartmentName"

_PATIENT = "PatientAge PatientSex PatientSize PatientWeight"

_DESCRIPTOR = """
    BidsGuess ConversionComments DigitizedHeadPointsCoordinateSystemDescription
    EEGCoordinateSystemDescription ElectricalStimulationParameters
    HeadCoilCoordinateSystemDescription ImageComments Instructions
    MEGCoordinateSystemDescription ProcedureStepDescription ProtocolName SeriesDescription
    StudyDescription SubjectArtefactDescription TaskDescription
"""

#: EEG/MEG keys an operator may type into (or the recording software copies from a typed
#: header): numbers, ``n/a``, the BIDS values of :data:`TYPED_VALUES` and filter tables of
#: :data:`FILTER_WORDS` with numeric values are kept; any other value becomes ``n/a``
_TYPED = """
    CapManufacturer CapManufacturersModelName DewarPosition EEGGround EEGPlacementScheme
    EEGReference HardwareFilters RecordingType SoftwareFilters
"""


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for category, words in (
        ("keep", _KEEP),
        ("remove", _REMOVE),
        ("shift", _SHIFT),
        ("device", _DEVICE),
        ("institution", _INSTITUTION),
        ("patient", _PATIENT),
        ("descriptor", _DESCRIPTOR),
        ("typed", _TYPED),
    ):
        for key in words.split():
            if key in table:
                raise AssertionError(f"sidecar key {key} classified twice")
            table[key] = category
    return table


#: top-level sidecar key -> category (one of :data:`CATEGORIES`)
SIDECAR_KEYS: Final[Mapping[str, str]] = _table()

#: numbered families dcm2niix writes (Siemens WIP parameters, ASL labels and delays): keep
SIDECAR_KEY_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"sWipMemBlock(?:Ad|Al)Free\d+"), "keep"),
    (re.compile(r"PLD\d+"), "keep"),
    (re.compile(r"Tag\d+"), "keep"),
)

#: sidecar key -> the DICOM keyword dcm2niix reads it from, where the names differ
DICOM_KEYWORD_OF: Final[Mapping[str, str]] = {
    "BodyPart": "BodyPartExamined",
    "ImageOrientationPatientDICOM": "ImageOrientationPatient",
    "ManufacturersModelName": "ManufacturerModelName",
    "ProcedureStepDescription": "PerformedProcedureStepDescription",
}

#: values of ``typed`` keys that BIDS defines (the rest of a typed value is ``n/a``)
TYPED_VALUES: Final[Mapping[str, frozenset[str]]] = {
    "RecordingType": frozenset({"continuous", "epoched", "discontinuous"}),
    "DewarPosition": frozenset({"upright", "supine"}),
}
#: keys of filter tables (``SoftwareFilters``/``HardwareFilters``) that converters write
FILTER_WORDS: Final = frozenset(
    {
        "HighpassFilter",
        "LowpassFilter",
        "NotchFilter",
        "CutoffFrequency",
        "FilterOrder",
        "Anti-aliasing filter",
        "half-amplitude cutoff (Hz)",
        "Roll-off",
    }
)
#: BIDS suffixes whose JSON describes the columns of a table (keys are column names): the
#: tables' data dictionaries, not recording sidecars; their keys are not looked up here
TABLE_SUFFIXES: Final = frozenset(
    {
        "events",
        "scans",
        "sessions",
        "participants",
        "channels",
        "electrodes",
        "beh",
        "samples",
        "blood",  # PET blood recordings: their JSON describes the table's columns too
    }
)

#: heudiconv's dcmstack dump: whole DICOM headers, removed when ``dcmmeta_*`` keys are there
DCMMETA_DUMPS: Final = frozenset({"global", "time", "slices", "vector"})

#: columns of ``*_scans.tsv`` that name a person (heudiconv's ``operator``): removed
SCANS_TSV_REMOVE: Final = ("operator",)

_DATE = re.compile(r"(\d{4})(-?)(\d{2})\2(\d{2})(.*)", re.DOTALL)
_DATE_REST = re.compile(r"(?:[T ]?\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_TIME_ONLY = re.compile(
    r"(?:[01]\d|2[0-3])(?::[0-5]\d(?::(?:[0-5]\d|60))?|[0-5]\d(?:[0-5]\d|60)?)(?:\.\d+)?"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- classification ----------------------------------------------------------------------


def classify_key(key: str, data: Mapping[str, Any] | None = None) -> str | None:
    """The category of a top-level sidecar key, or ``None`` if it is not classified.

    Parameters
    ----------
    key : str
        A top-level key of a JSON sidecar.
    data : Mapping, optional
        The whole sidecar: with ``dcmmeta_*`` keys in it, heudiconv's header dumps
        (:data:`DCMMETA_DUMPS`) are ``remove``.

    Returns
    -------
    str or None
        One of :data:`CATEGORIES`, or ``None``.
    """
    category = SIDECAR_KEYS.get(key)
    if category is not None:
        return category
    for pattern, pattern_category in SIDECAR_KEY_PATTERNS:
        if pattern.fullmatch(key):
            return pattern_category
    if key in DCMMETA_DUMPS and data is not None and any(k.startswith("dcmmeta_") for k in data):
        return "remove"
    return None


def unclassified_keys(data: Mapping[str, Any]) -> list[str]:
    """Top-level keys of a sidecar that the classification does not know (removed).

    Parameters
    ----------
    data : Mapping
        A parsed JSON sidecar.

    Returns
    -------
    list of str
        The keys, sorted.
    """
    return sorted(k for k in data if classify_key(k, data) is None)


def is_table_dictionary(path: str | Path) -> bool:
    """True for the JSON data dictionary of a table (its keys are the table's columns).

    Parameters
    ----------
    path : str or Path
        The JSON file, relative to the dataset or not.
    """
    path = Path(path)
    if "phenotype" in path.parts:
        return True
    suffix = path.name.removesuffix(".json").rsplit("_", 1)[-1]
    return suffix in TABLE_SUFFIXES or path.with_suffix(".tsv").is_file()


def _action(category: str | None, policy: DeidPolicy) -> str:
    """What to do with a key: ``keep``, ``drop``, ``shift`` or ``typed``."""
    if category is None or category == "descriptor":
        return "drop"
    if category in ("keep", "typed"):
        return category
    if category == "shift":
        return "shift" if policy.retain_modified_dates else "drop"
    kept_by = {
        "device": policy.retain_device_identity,
        "institution": policy.retain_institution_identity,
        "patient": policy.retain_patient_characteristics,
    }
    return "keep" if kept_by.get(category, False) else "drop"


def forbidden_keys(policy: DeidPolicy) -> frozenset[str]:
    """Top-level sidecar keys that must not be in a release made with ``policy``.

    Parameters
    ----------
    policy : DeidPolicy
        The study's options.

    Returns
    -------
    frozenset of str
        Every key of :data:`SIDECAR_KEYS` that :func:`scrub_sidecar` removes under
        ``policy`` (dates are not forbidden with Retain Modified Dates: they are shifted).
        Unclassified keys are forbidden too (see :func:`key_problems`).
    """
    return frozenset(k for k, c in SIDECAR_KEYS.items() if _action(c, policy) == "drop")


def key_problems(rel: str, data: Mapping[str, Any], policy: DeidPolicy) -> list[str]:
    """What in a released JSON file :func:`scrub_sidecar` would not have let through.

    Names keys and, for ``typed`` keys, that the value is not one windl keeps; never the
    value itself.

    Parameters
    ----------
    rel : str
        The file's path in the release (decides whether it is a table's dictionary).
    data : Mapping
        Its parsed top-level object.
    policy : DeidPolicy
        The release's options.

    Returns
    -------
    list of str
        One line per problem; empty if none.
    """
    forbidden = forbidden_keys(policy)
    dictionary = is_table_dictionary(rel)
    # a required key with the value scrub_sidecar gives it is no problem
    allowed = set() if dictionary else _required_as_scrubbed(rel, data, policy)
    problems = [f"forbidden key {key}" for key in sorted(set(data) & forbidden - allowed)]
    if not dictionary:
        problems += [
            f"key {key} is on no allow-list"
            for key in unclassified_keys(data)
            if key not in allowed
        ]
    problems += [
        f"{key}: a value windl does not keep for a typed key"
        for key, value in sorted(data.items())
        if classify_key(key, data) == "typed" and _typed_value(key, value) != value
    ]
    return problems


def _required_as_scrubbed(rel: str, data: Mapping[str, Any], policy: DeidPolicy) -> set[str]:
    """Keys of a released sidecar that BIDS requires and that hold their safe value."""
    return {
        key
        for key in required_keys(rel, data) & set(data)
        if _required_value(key, data[key], classify_key(key, data), policy) == data[key]
    }


def _typed_value(key: str, value: Any) -> Any:
    """``value`` of a ``typed`` key if windl keeps it, else ``"n/a"``."""
    if isinstance(value, bool | int | float) or value == "n/a":
        return value
    if isinstance(value, str):
        return value if value in TYPED_VALUES.get(key, ()) else "n/a"
    if isinstance(value, Mapping) and _numeric_filters(value):
        return value
    return "n/a"


def _numeric_filters(table: Mapping[str, Any]) -> bool:
    for name, value in table.items():
        if name not in FILTER_WORDS:
            return False
        if isinstance(value, Mapping):
            if not _numeric_filters(value):
                return False
        elif not (isinstance(value, int | float) or value == "n/a"):
            return False
    return True


# --- dates ----------------------------------------------------------------------------------


def shift_date_text(value: str, days: int) -> str | None:
    """Shift the date in a date or date-time text by ``days``; a time of day is unchanged.

    Accepts ``YYYY-MM-DD`` and ``YYYYMMDD`` (DICOM DA), each optionally followed by a time
    (``THH:MM:SS.ffffff``, ``HHMMSS.ffffff``) and a zone (``Z``, ``+HH:MM``), and a time of
    day alone (``HH:MM:SS.ffffff``, ``HHMMSS``), which is returned as it is. The format of
    the input is kept.

    Parameters
    ----------
    value : str
        The text.
    days : int
        Days to add (negative: earlier).

    Returns
    -------
    str or None
        The shifted text, or ``None`` if ``value`` is not a date or time this can shift
        exactly (the caller must then remove it).
    """
    text = value.strip()
    match = _DATE.fullmatch(text)
    if match is not None:
        year, sep, month, day, rest = match.groups()
        if not _DATE_REST.fullmatch(rest):
            return None
        try:
            new = dt.date(int(year), int(month), int(day)) + dt.timedelta(days=int(days))
        except (ValueError, OverflowError):
            return None
        return f"{new.year:04d}{sep}{new.month:02d}{sep}{new.day:02d}{rest}"
    if _TIME_ONLY.fullmatch(text):
        return text
    return None


def _shift_value(value: Any, days: int) -> Any:
    """A shifted copy of a sidecar value, or ``None`` if any part cannot be shifted."""
    if isinstance(value, str):
        return shift_date_text(value, days)
    if isinstance(value, list):
        shifted = [_shift_value(v, days) for v in value]
        return None if any(v is None for v in shifted) else shifted
    return None  # numbers, objects: no way to know what they count from


# --- sidecars -------------------------------------------------------------------------------


def scrub_sidecar(
    data: Mapping[str, Any],
    policy: DeidPolicy,
    date_offset_days: int,
    *,
    identifying_words: Iterable[str] = (),
    dictionary: bool = False,
    bids_path: str | None = None,
) -> dict[str, Any]:
    """A de-identified copy of a JSON sidecar (its top-level object).

    Parameters
    ----------
    data : Mapping
        The parsed sidecar; not changed.
    policy : DeidPolicy
        The study's options (see the module docstring for what each one keeps).
    date_offset_days : int
        The participant's date shift in days, the same one used for the participant's
        DICOM; used only with ``retain_modified_dates``.
    identifying_words : iterable of str, optional
        Accepted for callers of earlier versions; unused, since descriptors are no longer
        kept with known words taken out but removed.
    dictionary : bool, optional
        The file is a table's data dictionary (:func:`is_table_dictionary`): keys that
        are on no list (column names) are kept.
    bids_path : str, optional
        The sidecar's BIDS path: a key BIDS requires for it that the rules above would
        remove gets the safe value of :func:`_required_value` instead.

    Returns
    -------
    dict
        The kept keys in their original order; values of kept keys are the same objects.
    """
    del identifying_words
    out = _scrubbed(data, policy, date_offset_days, dictionary)
    if bids_path is None or dictionary:
        return out
    for key in required_keys(bids_path, data) & (set(data) - set(out)):
        value = _required_value(key, data[key], classify_key(key, data), policy)
        if value is not None:
            out[key] = value
    return {key: out[key] for key in data if key in out}


def _required_value(key: str, value: Any, category: str | None, policy: DeidPolicy) -> Any:
    """The value of a BIDS-required key the classification removes (``None``: removed).

    Unclassified keys and descriptors get :func:`windl.deid.required.safe_value` (a
    descriptor's text never stays: ``n/a``); times of day the date policy removes become
    :data:`~windl.deid.required.DUMMY_TIME`. Identifiers, device, institution and patient
    keys stay removed: the policy decides them, whatever BIDS requires.
    """
    if category is None:
        return safe_value(key, value)
    if category == "descriptor":
        return "n/a" if isinstance(value, str) else None
    if category == "shift" and not policy.retain_modified_dates:
        return safe_value(key, value, time_removed=True)
    return None


def _scrubbed(
    data: Mapping[str, Any], policy: DeidPolicy, date_offset_days: int, dictionary: bool
) -> dict[str, Any]:
    """The keys :data:`SIDECAR_KEYS` and the policy let through (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        category = classify_key(key, data)
        action = "keep" if category is None and dictionary else _action(category, policy)
        if action == "keep":
            out[key] = value
        elif action == "typed":
            out[key] = _typed_value(key, value)
        elif action == "shift":
            shifted = _shift_value(value, date_offset_days)
            if shifted is not None:
                out[key] = shifted
    return out


def scrub_sidecar_file(
    src: Path,
    dst: Path,
    policy: DeidPolicy,
    date_offset_days: int,
    *,
    identifying_words: Iterable[str] = (),
    bids_path: str | None = None,
) -> list[str]:
    """De-identify one JSON sidecar into ``dst`` (atomically); ``src`` is not changed.

    Parameters
    ----------
    src, dst : Path
        The sidecar and where to write its de-identified copy (folder created).
    policy, date_offset_days, identifying_words, bids_path
        As for :func:`scrub_sidecar`.

    Returns
    -------
    list of str
        :func:`unclassified_keys` of the sidecar (removed, unless it is a table's
        dictionary; a new converter's keys should be classified).

    Raises
    ------
    BadInput
        If ``src`` is not a JSON object.
    """
    src, dst = Path(src), Path(dst)
    _refuse_same(src, dst)
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"unreadable JSON sidecar ({type(exc).__name__})", src) from None
    if not isinstance(data, dict):
        raise BadInput("JSON sidecar is not an object", src)
    out = scrub_sidecar(
        data,
        policy,
        date_offset_days,
        dictionary=is_table_dictionary(src),
        bids_path=bids_path,
    )
    del identifying_words
    text = json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    atomic_write(dst, lambda fh: fh.write(text.encode("utf-8")))
    return unclassified_keys(data)


# --- TSV ------------------------------------------------------------------------------------


def scrub_tsv_dates(
    src: Path,
    dst: Path,
    policy: DeidPolicy,
    date_offset_days: int,
    *,
    columns: Iterable[str] = (),
    drop_columns: Iterable[str] = (),
) -> list[str]:
    """Copy a TSV file with its date columns shifted or set to ``n/a``.

    A column is a date column if it is named in ``columns`` or if every value that is not
    ``n/a`` (and at least one) starts with an ISO date (``YYYY-MM-DD``). With Retain
    Modified Dates their values are shifted by ``date_offset_days`` (a value that cannot be
    shifted becomes ``n/a``); without it every value becomes ``n/a``. Every other byte of
    the file is kept (line endings included).

    Parameters
    ----------
    src, dst : Path
        The TSV file and where to write the copy (atomically; folder created).
    policy : DeidPolicy
        The study's options.
    date_offset_days : int
        The participant's date shift in days.
    columns : iterable of str, optional
        Columns that are dates whatever their values look like.
    drop_columns : iterable of str, optional
        Columns removed from the copy.

    Returns
    -------
    list of str
        The columns treated as dates, in file order.

    Raises
    ------
    BadInput
        If ``src`` is not UTF-8 text or a row has more cells than the header.
    """
    src, dst = Path(src), Path(dst)
    _refuse_same(src, dst)
    try:
        text = src.read_bytes().decode("utf-8")  # not read_text: keep "\r\n" as it is
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"unreadable TSV ({type(exc).__name__})", src) from None
    lines = text.splitlines(keepends=True)
    if not lines:
        atomic_write(dst, lambda fh: None)
        return []
    rows = [_split_row(line) for line in lines]
    header = rows[0][0]
    for number, (cells, _) in enumerate(rows[1:], 2):
        if len(cells) > len(header):
            raise BadInput(f"line {number} has more cells than the header", src)
    named = set(columns)
    dates = [
        i
        for i, name in enumerate(header)
        if name in named
        or _looks_like_dates(cells[i] if i < len(cells) else "" for cells, _ in rows[1:])
    ]
    drop = {i for i, name in enumerate(header) if name in set(drop_columns)}
    out: list[str] = []
    for number, (cells, ending) in enumerate(rows):
        if number > 0 and cells != [""]:
            for i in dates:
                if i < len(cells):
                    cells[i] = _scrub_cell(cells[i], policy, date_offset_days)
        out.append("\t".join(c for i, c in enumerate(cells) if i not in drop) + ending)
    data = "".join(out).encode("utf-8")
    atomic_write(dst, lambda fh: fh.write(data))
    return [header[i] for i in dates if i not in drop]


def scrub_scans_tsv(src: Path, dst: Path, policy: DeidPolicy, date_offset_days: int) -> list[str]:
    """Copy a ``*_scans.tsv``: ``acq_time`` shifted or ``n/a``, ``operator`` removed.

    Parameters
    ----------
    src, dst : Path
        The scans file and where to write the copy.
    policy : DeidPolicy
        The study's options.
    date_offset_days : int
        The participant's date shift in days (the one used for the participant's DICOM
        and EEG/MEG files, so ``acq_time`` and the files' own dates agree).

    Returns
    -------
    list of str
        The columns treated as dates (see :func:`scrub_tsv_dates`).
    """
    return scrub_tsv_dates(
        src,
        dst,
        policy,
        date_offset_days,
        columns=("acq_time",),
        drop_columns=SCANS_TSV_REMOVE,
    )


def _split_row(line: str) -> tuple[list[str], str]:
    body = line.rstrip("\r\n")
    return body.split("\t"), line[len(body) :]


def _looks_like_dates(values: Iterable[str]) -> bool:
    seen = False
    for value in values:
        value = value.strip()
        if value in ("", "n/a"):
            continue
        if not _ISO_DATE.match(value) or shift_date_text(value, 0) is None:
            return False
        seen = True
    return seen


def _scrub_cell(value: str, policy: DeidPolicy, days: int) -> str:
    if value.strip() in ("", "n/a"):
        return value
    if not policy.retain_modified_dates:
        return "n/a"
    shifted = shift_date_text(value, days)
    return "n/a" if shifted is None else shifted


# --- NIfTI ----------------------------------------------------------------------------------

#: text fields of the NIfTI header that are blanked
NIFTI_BLANKED: Final = ("descrip", "aux_file", "db_name", "data_type", "intent_name")
#: NIfTI-1 fields that are unused (ANALYZE 7.5 leftovers) and could carry a number: zeroed
NIFTI_ZEROED: Final = ("extents", "session_error", "glmax", "glmin")

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def scrub_nifti(src: Path, dst: Path) -> Path:
    """Copy a single-file NIfTI-1/NIfTI-2 image with its free-text header fields blanked.

    ``descrip``, ``aux_file``, ``intent_name`` (whatever ``intent_code`` says: the name is
    typed text), ``db_name`` and ``data_type`` become empty; the unused ANALYZE fields
    ``extents``, ``session_error``, ``glmax``, ``glmin`` become 0; every header extension is
    dropped (``vox_offset`` becomes 352, or 544 for NIfTI-2), and so is anything after the
    voxel data. The voxel bytes are copied unchanged and every other header field
    (dimensions, data type, scaling, qform/sform, units, intent code and parameters, ...)
    is kept, so the image, its affine and its scaling are identical. A ``.gz`` output is
    written with mtime 0 and no file name, so the same input always gives the same bytes.

    Parameters
    ----------
    src : Path
        A ``.nii`` or ``.nii.gz`` file (gzip is detected by content).
    dst : Path
        Where to write; compressed if its name ends with ``.gz``. Written atomically.

    Returns
    -------
    Path
        ``dst``.

    Raises
    ------
    BadInput
        If ``src`` is not a single-file NIfTI-1/NIfTI-2 image.
    """
    src, dst = Path(src), Path(dst)
    _refuse_same(src, dst)
    if not src.is_file():
        raise BadInput("NIfTI not found (or its content is not present)", src)
    try:
        with src.open("rb") as raw, contextlib.ExitStack() as stack:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            fh: IO[bytes] = raw
            if compressed:
                fh = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
            header, vox_offset = _read_nifti_header(fh, src)
            _skip(fh, vox_offset - header.itemsize, src)

            voxels = _voxel_bytes(header)

            def write(out: IO[bytes]) -> None:
                if dst.name.endswith(".gz"):
                    with gzip.GzipFile(
                        filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6
                    ) as gz:
                        _write_nifti(gz, header, fh, voxels, src)
                else:
                    _write_nifti(out, header, fh, voxels, src)

            atomic_write(dst, write)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BadInput(f"damaged NIfTI ({type(exc).__name__}: {exc})", src) from None
    return dst


def _read_nifti_header(fh: IO[bytes], src: Path) -> tuple[np.ndarray, int]:
    from nibabel import nifti1, nifti2

    first = fh.read(4)
    if len(first) < 4:
        raise BadInput("not a NIfTI file (too short)", src)
    for dtype, size, magic_at, magic in (
        (nifti1.header_dtype, 348, 344, b"n+1\x00"),
        (nifti2.header_dtype, 540, 4, b"n+2\x00\r\n\x1a\n"),
    ):
        for order in ("<", ">"):
            if int.from_bytes(first, "little" if order == "<" else "big") != size:
                continue
            raw = first + fh.read(size - 4)
            if len(raw) < size:
                raise BadInput("not a NIfTI file (header cut short)", src)
            found = raw[magic_at : magic_at + len(magic)]
            if found != magic:
                raise BadInput(
                    f"not a single-file NIfTI (magic {found!r}; .hdr/.img pairs are not BIDS)",
                    src,
                )
            header = np.frombuffer(raw, dtype=dtype.newbyteorder(order), count=1).copy()
            vox_offset = int(header["vox_offset"][0])
            if vox_offset < size:
                vox_offset = size + 4  # 0 in old writers: right after the extension flag
            return header, vox_offset
    raise BadInput("not a NIfTI file (sizeof_hdr is neither 348 nor 540)", src)


def _skip(fh: IO[bytes], count: int, src: Path) -> None:
    while count > 0:
        chunk = fh.read(min(count, _CHUNK))
        if not chunk:
            raise BadInput("NIfTI ends before its voxel data", src)
        count -= len(chunk)


def _voxel_bytes(header: np.ndarray) -> int | None:
    """How many bytes the voxel data has (``None``: the header does not say)."""
    dim = [int(d) for d in header["dim"][0]]
    bitpix = int(header["bitpix"][0])
    if not 1 <= dim[0] <= 7 or bitpix <= 0 or bitpix % 8 or any(d < 1 for d in dim[1 : dim[0] + 1]):
        return None
    return int(np.prod(dim[1 : dim[0] + 1], dtype=np.int64)) * bitpix // 8


def _write_nifti(
    out: IO[bytes], header: np.ndarray, data: IO[bytes], voxels: int | None, src: Path
) -> None:
    header = header.copy()
    fields = header.dtype.names or ()
    for name in NIFTI_BLANKED:
        if name in fields:
            header[name] = b""
    for name in NIFTI_ZEROED:
        if name in fields:
            header[name] = 0
    size = header.itemsize
    header["vox_offset"] = 544 if size == 540 else 352
    out.write(header.tobytes())
    out.write(b"\x00\x00\x00\x00")  # extension flag: no extensions
    if voxels is None:
        shutil.copyfileobj(data, out, _CHUNK)
        return
    while voxels > 0:  # the voxels, not what a writer may have put after them
        chunk = data.read(min(voxels, _CHUNK))
        if not chunk:
            raise BadInput("NIfTI ends before the end of its voxel data", src)
        out.write(chunk)
        voxels -= len(chunk)


# --- files ----------------------------------------------------------------------------------


def _refuse_same(src: Path, dst: Path) -> None:
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise ValueError(f"{dst}: de-identification writes a copy; it would overwrite {src}")
