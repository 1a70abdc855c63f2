#!/usr/bin/env python3
"""moto's S3 server, with ranged GETs that read only the bytes asked for. FOR BENCHMARKS ONLY.

usage: scripts/moto-ranged.py [moto_server arguments, e.g. -H 127.0.0.1 -p 5000]

Why: moto (checked on 5.2.1) serves `GET` with `Range: bytes=a-b` by reading the whole object
and slicing it: `S3Response.get_object` returns `key.value` (the property `FakeKey.value` reads
the key's whole `_value_buffer`, a SpooledTemporaryFile, into one `bytes`), then
`S3Response.key_response` passes that to `_handle_range_header`, which returns
`response_content[begin : end + 1]`. Each 8 MiB part of a 2 GiB object therefore costs moto a
2 GiB read and a 2 GiB allocation, so an object read by ranged GETs (`aws s3 cp`, `etcdguard
status`) costs O(size² / part size): 2 GiB took about 7 minutes per tool, and at 8 GiB every
part would read and allocate 8 GiB. Real S3 serves a range in time proportional to the range.

What is patched, and nothing else:
- `S3Response.get_object`: while it runs for a request with a non-empty `Range` header and no
  `partNumber`, the thread is flagged, so that `FakeKey.value` returns a `_Range` view of the key
  instead of its bytes. Everything else moto does for the GET (authentication, `If-Match` and
  the other conditions, headers, ETag, checksums) is unchanged.
- `FakeKey.value` (getter only): returns that view while the flag is set, the bytes otherwise.
  `_Range` has `len()` (the key's size) and slicing, which reads only the slice from the key's
  buffer by `seek` + `read` under the key's lock: all `_handle_range_header` uses, so moto's
  own range parsing, 206/416 answers and `Content-Range` stay in force.
- `S3Response._handle_range_header`: when moto answers a ranged request with the whole object
  (a multi-range or unparsable `Range`), the view is turned back into the object's bytes.
Uploads, listings, non-ranged GETs and everything else are moto's own code.

Checked against plain moto 5.2.1 (2026-12-06): the same status, Content-Range, length and bytes for
`bytes=0-99`, `5-`, `-7`, a middle 8 MiB part, a range past the end, a multi-range, an unparsable
and an inverted range, an empty object, `If-Match` right and wrong, and `partNumber`.

Benchmarks only: the tests (scripts/test, tests/) run plain moto. scripts/bench-s3 runs this
launcher with MOTO=ranged; both tools it compares then talk to the same patched server.
"""
import sys
import threading

from moto.s3 import models, responses
from moto.server import main

_ranged = threading.local()


class _Range:
    """A key's bytes, read from its buffer only for the slice asked for."""

    def __init__(self, key):
        self.key = key

    def __len__(self):
        return self.key.size

    def __getitem__(self, s):
        start, stop, step = s.indices(len(self))
        assert step == 1, "only plain slices"
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return self.key._value_buffer.read(max(0, stop - start))

    def __bytes__(self):
        return self[:]


_value = models.FakeKey.value


def _value_get(key):
    return _Range(key) if getattr(_ranged, "on", False) else _value.fget(key)


models.FakeKey.value = property(_value_get, _value.fset)

_get_object = responses.S3Response.get_object


def get_object(self):
    _ranged.on = bool(self.headers.get("range")) and not self._get_int_param("partNumber")
    try:
        return _get_object(self)
    finally:
        _ranged.on = False


responses.S3Response.get_object = get_object

_handle_range_header = responses.S3Response._handle_range_header


def _handle_range(self, request, response_headers, response_content):
    status, headers, body = _handle_range_header(self, request, response_headers, response_content)
    return status, headers, bytes(body) if isinstance(body, _Range) else body


responses.S3Response._handle_range_header = _handle_range

if __name__ == "__main__":
    main(sys.argv[1:])
