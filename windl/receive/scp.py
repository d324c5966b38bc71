"""The receiving side: accepted SOP classes and transfer syntaxes, checks, and the spool.

Every C-STORE that :mod:`windl.receive.network` brings is checked — a complete dataset
(:func:`~windl.receive.dataset.scan_dataset`) whose SOP Class and Instance UIDs match the
request, with study and series UIDs — and written to the :class:`~windl.receive.spool.Spool`
as the bytes the peer sent behind file meta made from the request: never decoded,
re-encoded or transcoded. Only when the spool says the instance is on disk (fsynced) does
the response say Success; a malformed dataset gets a failure status (0xC000, or 0xA900 for
UIDs that do not match) and nothing is stored.

Performance, and why this design (dcmtk ``storescu`` sending ``dcm_qa_nih``, 608 files, one
association, ``TCP_NODELAY``; ``benchmarks/bench_receive.py``): pynetdicom's own
association loop managed 100 files/s with the first handler and ~300-430 files/s at best
(its reactors poll with 1 ms sleeps), against ~550-850 files/s for dcmtk's ``storescp``. The
blocking engine of :mod:`~windl.receive.network`, a header walk instead of pydicom's
parser, and one fsync per instance (no directory fsync on the acknowledgement path, see
:meth:`~windl.receive.spool.Spool.store`) reach 0.83x storescp on a quiet machine. What
remains is the fsync, which storescp never pays: dcmtk calls no fsync anywhere (3.6.7 as
in Debian, and its current source) and sends the C-STORE response right after writing the
file; ``--exec-on-reception``, even with ``--exec-sync``, runs only after the response. So
supervising storescp could not keep "durable before acknowledged" and was not chosen. On
a machine whose disk other processes keep busy, the fsync alone can cost more than
storescp's whole per-file time (one association: 0.3-0.6x, yet >= 0.81x of storescp plus
the bare fsyncs); senders using several associations overlap their fsyncs (4 associations:
0.71-1.23x storescp --fork under the same load). Numbers and runs: benchmarks/README.md.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from pynetdicom import ALL_TRANSFER_SYNTAXES, PYNETDICOM_IMPLEMENTATION_UID

from windl.config import Site
from windl.errors import MalformedDataset, ReceiveError
from windl.receive import ReceiveSettings, receive_root
from windl.receive.dataset import file_meta, scan_dataset
from windl.receive.network import IMPLEMENTATION_VERSION, StorageServer, StoreRequest
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


class Receiver:
    """A running receiver: the network engine and its spool.

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
        self.server: StorageServer | None = None
        self.stats = {"stored": 0, "duplicate": 0, "conflict": 0, "failed": 0}
        self._stats_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _refuse(self, request: StoreRequest, status: int, reason: str) -> tuple[int, str]:
        self._count("failed")
        log.warning("instance refused", extra={"sop": request.sop_instance, "reason": reason})
        self.spool.log_event(
            "refused instance",
            sop=request.sop_instance,
            calling_ae=request.peer.calling_ae,
            reason=reason,
        )
        return status, reason

    def on_store(self, request: StoreRequest) -> tuple[int, str | None]:
        """Check one C-STORE and spool it durably; the status for the response."""
        try:
            uids = scan_dataset(request.dataset, request.transfer_syntax)
        except MalformedDataset as exc:
            return self._refuse(request, CANNOT_UNDERSTAND, exc.message)
        for key, name in (("sop_instance", "SOPInstanceUID"), ("sop_class", "SOPClassUID")):
            if uids[key] != getattr(request, key):
                return self._refuse(request, DATASET_MISMATCH, f"{name} does not match the request")
        meta = file_meta(
            request.sop_class,
            request.sop_instance,
            request.transfer_syntax,
            request.peer.calling_ae,
            PYNETDICOM_IMPLEMENTATION_UID,
            IMPLEMENTATION_VERSION,
        )
        study_info = {
            "called_ae": request.peer.called_ae,
            "calling_ae": request.peer.calling_ae,
            "calling_host": request.peer.host,
        }
        try:
            outcome = self.spool.store(
                uids["study"],
                uids["series"],
                request.sop_instance,
                (meta, request.dataset),
                study_info,
            )
        except ValueError as exc:
            return self._refuse(request, CANNOT_UNDERSTAND, str(exc))
        except OSError as exc:
            self._count("failed")
            log.error("cannot store", extra={"sop": request.sop_instance, "reason": str(exc)})
            self.spool.log_event("store failed", sop=request.sop_instance, reason=str(exc))
            return OUT_OF_RESOURCES, "cannot write the spool"
        self._count(outcome.status)
        return SUCCESS, None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Prepare the spool and listen (returns; associations run in threads)."""
        recovered, removed = self.spool.prepare()
        if recovered or removed:
            log.info(
                "spool recovered after a crash",
                extra={"recovered": recovered, "removed_partial": removed},
            )
        contexts = {sop: TRANSFER_SYNTAXES for sop in STORAGE_SOP_CLASSES}
        contexts[VERIFICATION] = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
        try:
            server = StorageServer(
                (self.settings.host, self.settings.port),
                contexts,
                self.on_store,
                allowed_calling=self.settings.allowed_calling,
                allowed_hosts=self.settings.allowed_hosts,
                on_event=self.spool.log_event,
            )
        except OSError as exc:
            raise ReceiveError(
                f"cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}"
            ) from None
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            name="windl-receive-accept",
            kwargs={"poll_interval": 0.5},
            daemon=True,
        )
        self._thread.start()
        log.info(
            "listening",
            extra={"ae_title": self.settings.ae_title, "port": server.server_address[1]},
        )

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self.server is not None
        return int(self.server.server_address[1])

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting; let in-flight associations finish (up to ``timeout``)."""
        if self.server is None:
            return
        aborted = self.server.stop(timeout)
        if self._thread is not None:
            self._thread.join()
        self.server = None
        log.info("stopped", extra={**self.stats, "aborted_associations": aborted})


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop`` (graceful shutdown happens in the main loop)."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
