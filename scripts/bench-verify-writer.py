#!/usr/bin/env python3
"""Fill an etcd 3.4 member with realistic keys through the gRPC gateway (POST /v3/kv/txn).

usage: bench-verify-writer.py ENDPOINT KEYS
Writes KEYS keys under /registry/bench/, values of 200..2000 bytes, 120 puts per transaction.
"""
import base64
import json
import random
import sys
import urllib.request

endpoint, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789{}\":,"
pool = bytes(rng.choice(alphabet) for _ in range(1 << 16))
b64 = lambda b: base64.b64encode(b).decode()
batch = 120
for start in range(0, total, batch):
    ops = []
    for i in range(start, min(start + batch, total)):
        n = rng.randint(200, 2000)
        off = rng.randint(0, len(pool) - n)
        key = f"/registry/bench/ns{i % 97}/obj-{i:08d}".encode()
        ops.append({"request_put": {"key": b64(key), "value": b64(pool[off:off + n])}})
    req = urllib.request.Request(
        endpoint + "/v3/kv/txn",
        data=json.dumps({"success": ops}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    if start % (batch * 500) == 0:
        print(f"  {start}/{total} keys", file=sys.stderr, flush=True)
