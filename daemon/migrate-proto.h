/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration wire protocol (docs/migration.md): frame codec, message
 * decoding with named failures, per-page checksums and the auth proofs. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_MAGIC 0x474d4d47U /* "GMMG" */
#define MIG_VERSION 2U  /* 2: Poly1305 region tag keyed per migration (1: SHA-256) */
#define MIG_HEADER_SIZE 16U
#define MIG_NONCE_SIZE 32U
#define MIG_PROOF_SIZE 32U   /* HMAC-SHA256 */
#define MIG_DIGEST_SIZE 16U  /* Poly1305 tag of the region (mig_region_key) */
#define MIG_SALT_SIZE 32U    /* per migration: keys the region tag */
#define MIG_PAGE_SIZE 4096U  /* the only page size of version 2 */
#define MIG_MAX_PAGES 256U   /* pages in one DATA frame or REQUEST */
#define MIG_DATA_FIXED 16U   /* DATA: offset, count, reserved */
#define MIG_FRAME_MAX (MIG_DATA_FIXED + MIG_MAX_PAGES * (4U + MIG_PAGE_SIZE))
#define MIG_ERROR_TEXT_MAX 512U
#define MIG_TOKEN_MIN 16U
#define MIG_TOKEN_MAX 256U

enum mig_type {
        MIG_HELLO = 1,  /* dst -> src: version, channel, nonce */
        MIG_CHALLENGE,  /* src -> dst: version, page size, region size, nonce, proof, salt */
        MIG_AUTH,       /* dst -> src: proof */
        MIG_READY,      /* src -> dst: authenticated, requests welcome */
        MIG_REQUEST,    /* dst -> src: offset, count of pages */
        MIG_DATA,       /* src -> dst: offset, count, crc32 per page, the pages */
        MIG_FINISH,     /* dst -> src: everything is here, send the digest */
        MIG_DIGEST,     /* src -> dst: Poly1305 tag of the whole region */
        MIG_DONE,       /* dst -> src: status 0 (identical) or a mig_error */
        MIG_ERROR,      /* either way: a mig_error and a message, then the stream ends */
        _MIG_TYPE_MAX,
};

enum mig_channel {
        MIG_CHANNEL_BULK = 0,  /* everything in order */
        MIG_CHANNEL_FAULT = 1, /* pages a fault waits for, never behind bulk data */
};

/* Failures the peer is told about, each with its errno (mig_error_to_errno). */
enum mig_error {
        MIG_ERR_NONE = 0,
        MIG_ERR_AUTH,     /* wrong token: -EKEYREJECTED */
        MIG_ERR_VERSION,  /* -EPROTONOSUPPORT */
        MIG_ERR_CORRUPT,  /* a page checksum or the digest differs: -EBADMSG */
        MIG_ERR_PROTOCOL, /* malformed or unexpected frame: -EPROTO */
        MIG_ERR_TOO_LARGE, /* a length over the limit: -EMSGSIZE */
        MIG_ERR_TRUNCATED, /* a frame shorter than its type needs: -ENODATA */
        MIG_ERR_GEOMETRY, /* region size or page size differ: -EINVAL */
        MIG_ERR_INTERNAL, /* the peer failed on its own: -EIO */
        _MIG_ERR_MAX,
};

struct mig_msg {
        enum mig_type type;
        union {
                struct { uint32_t version, channel; uint8_t nonce[MIG_NONCE_SIZE]; } hello;
                struct {
                        uint32_t version, page_size;
                        uint64_t region_size;
                        uint8_t nonce[MIG_NONCE_SIZE], proof[MIG_PROOF_SIZE], salt[MIG_SALT_SIZE];
                } challenge;
                struct { uint8_t proof[MIG_PROOF_SIZE]; } auth;
                struct { uint64_t offset; uint32_t count; } request;
                struct { uint64_t offset; uint32_t count; const uint8_t *crcs, *pages; } data; /* into the payload */
                struct { uint8_t digest[MIG_DIGEST_SIZE]; } digest;
                struct { uint32_t status; } done;
                struct { uint32_t code; char text[MIG_ERROR_TEXT_MAX + 1]; } error;
        };
};

const char *mig_type_name(unsigned type);
const char *mig_error_name(unsigned code);
int mig_error_to_errno(unsigned code);
/* The mig_error for a negative errno (MIG_ERR_INTERNAL when none fits). */
enum mig_error mig_error_from_errno(int r);

/* Header: -EPROTO for a bad magic, unknown type or non-zero reserved bits,
 * -EMSGSIZE for a length over what the type may carry. @msg says which. */
void mig_header_encode(uint8_t out[MIG_HEADER_SIZE], enum mig_type type, uint32_t length);
int mig_header_decode(const uint8_t in[MIG_HEADER_SIZE], enum mig_type *type, uint32_t *length, char *msg,
                      size_t msg_size);
/* Payload of a frame whose header said @type and @length: -ENODATA when shorter
 * than the type needs, -EPROTO when longer or inconsistent, -EMSGSIZE for a
 * count over MIG_MAX_PAGES. DATA points into @payload. */
int mig_payload_decode(enum mig_type type, const uint8_t *payload, uint32_t length, struct mig_msg *ret,
                       char *msg, size_t msg_size);
/* Encode @m (DATA: count pages at data.pages, crcs computed here) into @out of
 * @size bytes, header included; returns the frame's length or -ENOBUFS. */
int mig_frame_encode(const struct mig_msg *m, uint8_t *out, size_t size);
/* The fixed part of a DATA payload of @length bytes (its first MIG_DATA_FIXED
 * bytes at @p), checked as mig_payload_decode() does; data.crcs points after
 * it, data.pages is left for the caller (who may read them elsewhere). */
int mig_data_head_decode(const uint8_t *p, uint32_t length, struct mig_msg *m, char *msg, size_t msg_size);
/* A DATA frame's length for @count pages. */
static inline uint32_t mig_data_length(uint32_t count)
{
        return MIG_DATA_FIXED + count * (4U + MIG_PAGE_SIZE);
}
/* -EBADMSG naming the first page whose checksum differs. */
int mig_data_verify(const struct mig_msg *m, char *msg, size_t msg_size);
uint32_t mig_page_crc(const void *page);

/* Parse a byte stream of whole frames (the fuzzer's entry): 0 when every
 * frame decodes, else the first failure; -ENODATA for a cut-off last frame.
 * @each (may be NULL) sees every decoded message. */
int mig_stream_parse(const uint8_t *buf, size_t size, int (*each)(const struct mig_msg *m, void *userdata),
                     void *userdata, char *msg, size_t msg_size);

/* The proof a side sends: HMAC-SHA256 keyed with the token over a label for
 * the side and both nonces (its peer's first), so no proof can be replayed
 * from the other direction or another session. */
int mig_proof(const char *token, bool source, const uint8_t peer_nonce[MIG_NONCE_SIZE],
              const uint8_t own_nonce[MIG_NONCE_SIZE], uint8_t out[MIG_PROOF_SIZE]);
/* The one-time Poly1305 key of a migration's region tag: HKDF-SHA256 of the
 * token with the source's per-migration @salt (docs/migration.md, Security). */
int mig_region_key(const char *token, const uint8_t salt[MIG_SALT_SIZE], uint8_t out[32]);
/* Constant-time comparison of a received proof with the expected one. */
bool mig_proof_equal(const uint8_t a[MIG_PROOF_SIZE], const uint8_t b[MIG_PROOF_SIZE]);
/* A token: MIG_TOKEN_MIN..MAX printable ASCII characters without spaces. */
int mig_token_check(const char *token, char *msg, size_t msg_size);
/* A fresh random token (64 hex characters), malloc()ed. */
int mig_token_new(char **ret);
int mig_nonce_new(uint8_t out[MIG_NONCE_SIZE]);
