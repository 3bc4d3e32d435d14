#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes tests/fuzz/corpus/migrate-proto/: valid-* streams the codec must
# accept and bad-* ones it must refuse (docs/migration.md has the format).
import os, struct, zlib

MAGIC, PAGE = 0x474D4D47, 4096
T = dict(HELLO=1, CHALLENGE=2, AUTH=3, READY=4, REQUEST=5, DATA=6, FINISH=7, DIGEST=8, DONE=9, ERROR=10)

def frame(t, payload, length=None):
    return struct.pack('>IIII', MAGIC, T[t] << 16, len(payload) if length is None else length, 0) + payload

def data(offset, pages, corrupt=False):
    crcs = b''.join(struct.pack('>I', zlib.crc32(p) ^ (1 if corrupt else 0)) for p in pages)
    return frame('DATA', struct.pack('>QII', offset, len(pages), 0) + crcs + b''.join(pages))

page = bytes(range(256)) * 16
hello = frame('HELLO', struct.pack('>II', 2, 0) + b'n' * 32)
# version 2: CHALLENGE ends with the migration's salt, DIGEST is a 16-byte Poly1305 tag
challenge = frame('CHALLENGE', struct.pack('>IIQ', 2, PAGE, 1 << 30) + b'N' * 32 + b'P' * 32 + b'S' * 32)
corpus = {
    'valid-hello': hello,
    'valid-challenge': challenge,
    'valid-session': hello + challenge + frame('AUTH', b'p' * 32) + frame('READY', b'')
        + frame('REQUEST', struct.pack('>QII', 0, 2, 0)) + data(0, [page, bytes(PAGE)])
        + frame('FINISH', b'') + frame('DIGEST', b'd' * 16) + frame('DONE', struct.pack('>II', 0, 0)),
    'valid-error': frame('ERROR', struct.pack('>II', 1, 0) + b'wrong token'),
    'valid-data-max': data(PAGE, [page] * 256),
    'valid-empty': b'',
    'bad-magic': struct.pack('>IIII', 0x47455420, 1 << 16, 0, 0),
    'bad-type-unknown': struct.pack('>IIII', MAGIC, 99 << 16, 0, 0),
    'bad-flags': struct.pack('>IIII', MAGIC, (1 << 16) | 1, 40, 0) + b'x' * 40,
    'bad-reserved': struct.pack('>IIII', MAGIC, 4 << 16, 0, 7),
    'bad-oversized-data': struct.pack('>IIII', MAGIC, T['DATA'] << 16, 0x7fffffff, 0),
    'bad-oversized-hello': struct.pack('>IIII', MAGIC, T['HELLO'] << 16, 41, 0) + b'x' * 41,
    'bad-truncated-header': hello[:10],
    'bad-truncated-payload': hello[:30],
    'bad-truncated-data': data(0, [page, page])[:-100],
    'bad-short-hello': frame('HELLO', b'x' * 12),
    'bad-data-length-lies': frame('DATA', struct.pack('>QII', 0, 2, 0) + b'\0' * 8 + page),
    'bad-data-crc': data(0, [page, page], corrupt=True),
    'bad-data-zero-pages': frame('DATA', struct.pack('>QII', 0, 0, 0)),
    'bad-data-too-many-pages': frame('DATA', struct.pack('>QII', 0, 257, 0) + b'\0' * 1000),
    'bad-data-unaligned': data(100, [page]),
    'bad-request-unaligned': frame('REQUEST', struct.pack('>QII', 1, 1, 0)),
    'bad-request-too-many': frame('REQUEST', struct.pack('>QII', 0, 100000, 0)),
    'bad-request-zero': frame('REQUEST', struct.pack('>QII', 0, 0, 0)),
    'bad-error-short': frame('ERROR', b'abc'),
    'bad-after-valid': hello + b'\x47\x4d',
    'bad-challenge-v1-length': frame('CHALLENGE', struct.pack('>IIQ', 1, PAGE, 1 << 30) + b'N' * 32 + b'P' * 32),
    'bad-digest-v1-sha256': frame('DIGEST', b'd' * 32),
    'bad-digest-short': frame('DIGEST', b'd' * 15),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'migrate-proto')
os.makedirs(out, exist_ok=True)
for name, blob in corpus.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(blob)
