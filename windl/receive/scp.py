"""The network side: a pynetdicom Storage SCP with C-ECHO, allowlist and TCP_NODELAY.

Every C-STORE is checked (a parseable dataset whose UIDs match the request) and written
to the :class:`~windl.receive.spool.Spool` as the bytes the peer sent, behind file meta
made from the request; never re-encoded, never transcoded. Only after the spool says the
file is on disk does the response say Success.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.transport import ThreadedAssociationServer

from windl.config import Site
from windl.errors import ReceiveError
from windl.receive import ReceiveSettings, receive_root
from windl.receive.spool import Spool

log = logging.getLogger("windl.receive")

#: Storage SOP classes scanners send: MR, enhanced MR, MR spectroscopy, raw data,
#: encapsulated PDF, structured reports, plus screenshots, presentation states and
#: Siemens' CSA non-image objects (which ingest keeps as non-image DICOM)
STORAGE_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.2": "MR Spectroscopy Storage",
    "1.2.840.10008.5.1.4.1.1.4.3": "Enhanced MR Color Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.59": "Key Object Selection Document Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.11.1": "Grayscale Softcopy Presentation State Storage",
    "1.3.12.2.1107.5.9.1": "Siemens CSA Non-Image Storage",
}

#: Transfer syntaxes stored as received, bit for bit (all of ``dcm_qa_ts``; lossless only).
#: pynetdicom picks the first of these that a proposed context offers: compressed first, so
#: a sender never has to decompress what it holds; then the uncompressed ones.
TRANSFER_SYNTAXES: list[str] = [
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent)
]
assert set(TRANSFER_SYNTAXES) <= set(ALL_TRANSFER_SYNTAXES) | {"1.2.840.10008.1.2.4.201"}

VERIFICATION = "1.2.840.10008.1.1"

# C-STORE statuses (PS3.4 B.2.3)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000


class MalformedDataset(ValueError):
    """A C-STORE dataset that cannot be stored (unparseable, truncated, UIDs missing)."""


def _check_complete(ds: Dataset, size: int) -> None:
    """Refuse a dataset whose last element claims more bytes than were sent."""
    end = 0
    for tag in ds._dict:
        raw = ds._dict[tag]
        length = getattr(raw, "length", None)
        tell = getattr(raw, "value_tell", None)
        if length is None or tell is None or length == 0xFFFFFFFF:
            continue
        end = max(end, tell + length)
    if end > size:
        raise MalformedDataset(f"truncated: elements end at byte {end}, {size} received")


def parse_header(data: bytes, transfer_syntax: str) -> Dataset:
    """Parse the received dataset (no pixel conversion) and check it is complete."""
    if not data:
        raise MalformedDataset("empty dataset")
    ts = UID(transfer_syntax)
    try:
        if ts == "1.2.840.10008.1.2.1.99":
            import zlib

            inflated = zlib.decompress(data, -zlib.MAX_WBITS)
            ds = read_dataset(BytesIO(inflated), False, True)
            _check_complete(ds, len(inflated))
        else:
            ds = read_dataset(BytesIO(data), ts.is_implicit_VR, ts.is_little_endian)
            _check_complete(ds, len(data))
    except MalformedDataset:
        raise
    except Exception as exc:  # pydicom raises many kinds on garbage
        raise MalformedDataset(f"cannot parse: {exc}") from None
    return ds


class Receiver:
    """A running receiver: the SCP, its spool and (optionally) the hand-off worker.

    Parameters
    ----------
    site
        The site; settings from ``[receive]`` of its ``windl.toml``.
    settings
        Overrides the settings read from the site.
    """

    def __init__(self, site: Site, settings: ReceiveSettings | None = None) -> None:
        self.site = site
        self.settings = settings or ReceiveSettings.from_site(site)
        self.spool = Spool(receive_root(site))
        self.server: ThreadedAssociationServer | None = None
        self.stats = {"stored": 0, "duplicate": 0, "conflict": 0, "failed": 0}
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------ handlers
    def _on_conn_open(self, event: evt.Event) -> None:
        sock = event.assoc.dul.socket.socket
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host = event.address[0]
        allowed = self.settings.allowed_hosts
        if allowed and host not in allowed:
            log.warning("connection refused", extra={"peer": host, "reason": "host not allowed"})
            self.spool.log_event("refused", host=host, reason="host not allowed")
            event.assoc.dul.socket.close()

    def _on_rejected(self, event: evt.Event) -> None:
        req = event.assoc.requestor
        log.warning("association rejected", extra={"calling_ae": req.ae_title, "peer": req.address})
        self.spool.log_event("rejected", calling_ae=req.ae_title, host=req.address)

    def _on_echo(self, event: evt.Event) -> int:
        return SUCCESS

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _on_store(self, event: evt.Event) -> int | tuple[int, Dataset]:
        request = event.request
        sop_uid = str(request.AffectedSOPInstanceUID)
        sop_class = str(request.AffectedSOPClassUID)
        transfer_syntax = str(event.context.transfer_syntax)
        data = event.encoded_dataset(include_meta=False)
        try:
            ds = parse_header(data, transfer_syntax)
            if str(ds.get("SOPInstanceUID", "")) != sop_uid:
                raise MalformedDataset(f"SOPInstanceUID does not match the request ({sop_uid})")
            if str(ds.get("SOPClassUID", "")) != sop_class:
                raise MalformedDataset(f"SOPClassUID does not match the request ({sop_class})")
            study_uid = str(ds.get("StudyInstanceUID", "") or "")
            series_uid = str(ds.get("SeriesInstanceUID", "") or "")
            if not study_uid or not series_uid:
                raise MalformedDataset("StudyInstanceUID or SeriesInstanceUID missing")
        except MalformedDataset as exc:
            self._count("failed")
            req = event.assoc.requestor
            log.warning("instance refused", extra={"sop": sop_uid, "reason": str(exc)})
            self.spool.log_event(
                "refused instance", sop=sop_uid, calling_ae=req.ae_title, reason=str(exc)
            )
            status = DATASET_MISMATCH if "does not match" in str(exc) else CANNOT_UNDERSTAND
            return status
        study_info = {
            "called_ae": event.assoc.acceptor.ae_title,
            "calling_ae": event.assoc.requestor.ae_title,
            "calling_host": event.assoc.requestor.address,
        }
        full = event.encoded_dataset(include_meta=True)  # meta from the request + bytes as sent
        try:
            outcome = self.spool.store(study_uid, series_uid, sop_uid, full, study_info)
        except (OSError, ValueError) as exc:
            self._count("failed")
            log.error("cannot store", extra={"sop": sop_uid, "reason": str(exc)})
            self.spool.log_event("store failed", sop=sop_uid, reason=str(exc))
            return OUT_OF_RESOURCES
        self._count(outcome.status)
        return SUCCESS

    # ------------------------------------------------------------------ life cycle
    def make_ae(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.maximum_pdu_size = 0  # no limit: fewer, larger P-DATA PDUs
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        ae.maximum_associations = 16
        ae.require_calling_aet = list(self.settings.allowed_calling)
        for sop_class in STORAGE_SOP_CLASSES:
            ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
        return ae

    def start(self) -> None:
        """Prepare the spool and listen (returns; associations run in threads)."""
        removed = self.spool.prepare()
        if removed:
            log.info("removed unacknowledged partial files", extra={"count": len(removed)})
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        ae = self.make_ae()
        try:
            server = ae.start_server(
                (self.settings.host, self.settings.port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            raise ReceiveError(
                f"cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}"
            ) from None
        server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = server
        log.info(
            "listening",
            extra={"ae_title": self.settings.ae_title, "port": server.server_address[1]},
        )

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting; let in-flight associations finish (up to ``timeout``)."""
        if self.server is None:
            return
        server = self.server
        active = list(server.active_associations)
        # socketserver.shutdown stops the accept loop; server_close closes the listener.
        # Running associations keep their own sockets and threads.
        super(ThreadedAssociationServer, server).shutdown()
        server.server_close()
        deadline = time.monotonic() + timeout
        for assoc in active:
            assoc.join(max(0.0, deadline - time.monotonic()))
        for assoc in server.active_associations:
            assoc.abort()
        self.server = None
        log.info("stopped", extra=dict(self.stats))


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` (graceful shutdown happens in the main loop)."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
