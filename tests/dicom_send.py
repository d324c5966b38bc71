"""A separate-process DICOM sender for the receive tests (pynetdicom).

``python dicom_send.py [--bind ADDRESS] PORT CALLING_AE CALLED_AE FILE...`` proposes one
presentation context per (SOP class, transfer syntax) of the files, sends each file's
dataset bytes as they are, and prints ``STATUS<TAB>FILE`` per file (hex status), or
``rejected`` if the first association is refused. ``--bind`` sends from that local address
(e.g. 127.0.0.2).

Like a scanner, it sends an instance that got no response again on a new association (up
to 3 times, then prints ``none<TAB>FILE`` and stops): pynetdicom's SCU has a race between
its association reactor and ``send_c_store`` (cf. pydicom/pynetdicom#875) that a receiver
answering within microseconds — windl's answer to a duplicate — sometimes wins, and the
response is then lost in pynetdicom, not on the wire.
"""

from __future__ import annotations

import socket
import sys

from pydicom import dcmread
from pynetdicom import AE, _config, evt

# send each file's bytes after its file meta as they are (no decode and re-encode)
_config.STORE_SEND_CHUNKED_DATASET = True


def _no_delay(event: evt.Event) -> None:
    # pynetdicom never sets it: without it every message waits ~40 ms (Nagle + delayed ACK)
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main(argv: list[str]) -> int:
    bind = ""
    if argv[0] == "--bind":
        bind, argv = argv[1], argv[2:]
    port, calling, called, *files = argv
    ae = AE(ae_title=calling)
    pairs = set()
    for path in files:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        pairs.add((meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID))
    for sop_class, ts in sorted(pairs):
        ae.add_requested_context(sop_class, [ts])
    remaining, tries = list(files), 0
    while remaining:
        assoc = ae.associate(
            "127.0.0.1",
            int(port),
            ae_title=called,
            bind_address=(bind, 0),
            evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)],
        )
        if not assoc.is_established:
            print("rejected" if len(remaining) == len(files) else f"none\t{remaining[0]}")
            return 1
        while remaining:
            try:
                status = assoc.send_c_store(remaining[0])
            except RuntimeError:  # the association is gone
                status = None
            if not status:
                break
            print(f"{status.Status:04x}\t{remaining.pop(0)}", flush=True)
            tries = 0
        if not remaining:
            assoc.release()
            return 0
        assoc.abort()
        tries += 1
        if tries > 3:
            print(f"none\t{remaining[0]}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
