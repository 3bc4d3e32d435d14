/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The migration frame codec: big-endian headers and payloads, every length
 * checked against its type, CRC32 per page (libdeflate), HMAC-SHA256 proofs
 * and the HKDF key of the region tag (OpenSSL). */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "macro.h"
#include "migrate-proto.h"

static const char *const type_names[_MIG_TYPE_MAX] = {
        [MIG_HELLO] = "HELLO", [MIG_CHALLENGE] = "CHALLENGE", [MIG_AUTH] = "AUTH", [MIG_READY] = "READY",
        [MIG_REQUEST] = "REQUEST", [MIG_DATA] = "DATA", [MIG_FINISH] = "FINISH", [MIG_DIGEST] = "DIGEST",
        [MIG_DONE] = "DONE", [MIG_ERROR] = "ERROR",
};

static const struct {
        const char *name;
        int errno_value;
} errors[_MIG_ERR_MAX] = {
        [MIG_ERR_NONE] = { "none", 0 },
        [MIG_ERR_AUTH] = { "authentication failed", EKEYREJECTED },
        [MIG_ERR_VERSION] = { "protocol version mismatch", EPROTONOSUPPORT },
        [MIG_ERR_CORRUPT] = { "corrupted data", EBADMSG },
        [MIG_ERR_PROTOCOL] = { "protocol error", EPROTO },
        [MIG_ERR_TOO_LARGE] = { "frame too large", EMSGSIZE },
        [MIG_ERR_TRUNCATED] = { "truncated frame", ENODATA },
        [MIG_ERR_GEOMETRY] = { "region geometry differs", EINVAL },
        [MIG_ERR_INTERNAL] = { "internal error", EIO },
};

/* Fixed payload lengths; DATA and ERROR vary. */
static const uint32_t fixed_length[_MIG_TYPE_MAX] = {
        [MIG_HELLO] = 8 + MIG_NONCE_SIZE,
        [MIG_CHALLENGE] = 16 + MIG_NONCE_SIZE + MIG_PROOF_SIZE + MIG_SALT_SIZE,
        [MIG_AUTH] = MIG_PROOF_SIZE,
        [MIG_READY] = 0,
        [MIG_REQUEST] = 16,
        [MIG_FINISH] = 0,
        [MIG_DIGEST] = MIG_DIGEST_SIZE,
        [MIG_DONE] = 8,
};

const char *mig_type_name(unsigned type)
{
        return type > 0 && type < _MIG_TYPE_MAX ? type_names[type] : "unknown";
}

const char *mig_error_name(unsigned code)
{
        return code < _MIG_ERR_MAX ? errors[code].name : "unknown error";
}

int mig_error_to_errno(unsigned code)
{
        return code > 0 && code < _MIG_ERR_MAX ? -errors[code].errno_value : -EIO;
}

enum mig_error mig_error_from_errno(int r)
{
        for (unsigned i = 1; i < _MIG_ERR_MAX; i++)
                if (errors[i].errno_value == -r)
                        return (enum mig_error) i;
        return MIG_ERR_INTERNAL;
}

static uint32_t max_length(enum mig_type type)
{
        if (type == MIG_DATA)
                return MIG_FRAME_MAX;
        if (type == MIG_ERROR)
                return 8 + MIG_ERROR_TEXT_MAX;
        return fixed_length[type];
}

static void put32(uint8_t *p, uint32_t v)
{
        v = htobe32(v);
        memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
        v = htobe64(v);
        memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, 8);
        return be64toh(v);
}

void mig_header_encode(uint8_t out[MIG_HEADER_SIZE], enum mig_type type, uint32_t length)
{
        put32(out, MIG_MAGIC);
        put32(out + 4, (uint32_t) type << 16);
        put32(out + 8, length);
        put32(out + 12, 0);
}

int mig_header_decode(const uint8_t in[MIG_HEADER_SIZE], enum mig_type *type, uint32_t *length, char *msg,
                      size_t msg_size)
{
        uint32_t magic = get32(in), word = get32(in + 4), len = get32(in + 8);
        unsigned t = word >> 16;

        if (magic != MIG_MAGIC) {
                snprintf(msg, msg_size, "not a gmem migration stream (magic 0x%08x, expected 0x%08x)", magic,
                         MIG_MAGIC);
                return -EPROTO;
        }
        if (t == 0 || t >= _MIG_TYPE_MAX || (word & 0xffff) || get32(in + 12)) {
                snprintf(msg, msg_size, "frame type %u with flags 0x%x is unknown to protocol version %u", t,
                         word & 0xffff, MIG_VERSION);
                return -EPROTO;
        }
        if (len > max_length((enum mig_type) t)) {
                snprintf(msg, msg_size, "%s frame of %u bytes exceeds its limit of %u bytes", type_names[t], len,
                         max_length((enum mig_type) t));
                return -EMSGSIZE;
        }
        *type = (enum mig_type) t;
        *length = len;
        return 0;
}

int mig_data_head_decode(const uint8_t *p, uint32_t length, struct mig_msg *m, char *msg, size_t msg_size)
{
        *m = (struct mig_msg) { .type = MIG_DATA };
        if (length < MIG_DATA_FIXED) {
                snprintf(msg, msg_size, "truncated frame: DATA of %u bytes, its fixed part alone is %u", length,
                         MIG_DATA_FIXED);
                return -ENODATA;
        }
        m->data.offset = get64(p);
        m->data.count = get32(p + 8);
        if (get32(p + 12)) {
                snprintf(msg, msg_size, "DATA frame has non-zero reserved bits");
                return -EPROTO;
        }
        if (m->data.count == 0 || m->data.count > MIG_MAX_PAGES) {
                snprintf(msg, msg_size, "DATA frame carries %u pages; 1 to %u are allowed", m->data.count,
                         MIG_MAX_PAGES);
                return m->data.count ? -EMSGSIZE : -EPROTO;
        }
        if (m->data.offset % MIG_PAGE_SIZE) {
                snprintf(msg, msg_size, "DATA offset %llu is not page aligned", (unsigned long long) m->data.offset);
                return -EPROTO;
        }
        if (length != mig_data_length(m->data.count)) {
                snprintf(msg, msg_size, "%s: DATA of %u pages needs %u bytes, has %u",
                         length < mig_data_length(m->data.count) ? "truncated frame" : "malformed frame",
                         m->data.count, mig_data_length(m->data.count), length);
                return length < mig_data_length(m->data.count) ? -ENODATA : -EPROTO;
        }
        m->data.crcs = p + MIG_DATA_FIXED;
        return 0;
}

static int decode_data(const uint8_t *p, uint32_t length, struct mig_msg *m, char *msg, size_t msg_size)
{
        int r = mig_data_head_decode(p, length, m, msg, msg_size);

        if (r >= 0)
                m->data.pages = p + MIG_DATA_FIXED + 4 * m->data.count;
        return r;
}

static int decode_error(const uint8_t *p, uint32_t length, struct mig_msg *m, char *msg, size_t msg_size)
{
        if (length < 8) {
                snprintf(msg, msg_size, "truncated frame: ERROR of %u bytes, needs at least 8", length);
                return -ENODATA;
        }
        m->error.code = get32(p);
        memcpy(m->error.text, p + 8, length - 8);
        m->error.text[length - 8] = '\0';
        for (char *c = m->error.text; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c == 0x7f)
                        *c = '?';
        return 0;
}

static void decode_fixed(const uint8_t *p, struct mig_msg *m)
{
        switch (m->type) {
        case MIG_HELLO:
                m->hello.version = get32(p);
                m->hello.channel = get32(p + 4);
                memcpy(m->hello.nonce, p + 8, MIG_NONCE_SIZE);
                break;
        case MIG_CHALLENGE:
                m->challenge.version = get32(p);
                m->challenge.page_size = get32(p + 4);
                m->challenge.region_size = get64(p + 8);
                memcpy(m->challenge.nonce, p + 16, MIG_NONCE_SIZE);
                memcpy(m->challenge.proof, p + 16 + MIG_NONCE_SIZE, MIG_PROOF_SIZE);
                memcpy(m->challenge.salt, p + 16 + MIG_NONCE_SIZE + MIG_PROOF_SIZE, MIG_SALT_SIZE);
                break;
        case MIG_AUTH:
                memcpy(m->auth.proof, p, MIG_PROOF_SIZE);
                break;
        case MIG_REQUEST:
                m->request.offset = get64(p);
                m->request.count = get32(p + 8);
                break;
        case MIG_DIGEST:
                memcpy(m->digest.digest, p, MIG_DIGEST_SIZE);
                break;
        case MIG_DONE:
                m->done.status = get32(p);
                break;
        default:
                break;
        }
}

int mig_payload_decode(enum mig_type type, const uint8_t *payload, uint32_t length, struct mig_msg *ret,
                       char *msg, size_t msg_size)
{
        *ret = (struct mig_msg) { .type = type };
        if (type == MIG_DATA)
                return decode_data(payload, length, ret, msg, msg_size);
        if (type == MIG_ERROR)
                return decode_error(payload, length, ret, msg, msg_size);
        if (length != fixed_length[type]) {
                snprintf(msg, msg_size, "%s: %s is %u bytes, not %u",
                         length < fixed_length[type] ? "truncated frame" : "malformed frame", type_names[type], length,
                         fixed_length[type]);
                return length < fixed_length[type] ? -ENODATA : -EPROTO;
        }
        decode_fixed(payload, ret);
        if (type == MIG_REQUEST && (ret->request.count == 0 || ret->request.count > MIG_MAX_PAGES ||
                                    ret->request.offset % MIG_PAGE_SIZE || get32(payload + 12))) {
                snprintf(msg, msg_size, "REQUEST of %u pages at %llu: 1 to %u page-aligned pages are allowed",
                         ret->request.count, (unsigned long long) ret->request.offset, MIG_MAX_PAGES);
                return ret->request.count > MIG_MAX_PAGES ? -EMSGSIZE : -EPROTO;
        }
        return 0;
}

/* zlib's CRC-32 (ISO-HDLC), folded with PCLMULQDQ where the CPU has it. */
uint32_t mig_page_crc(const void *page)
{
        return libdeflate_crc32(0, page, MIG_PAGE_SIZE);
}

static uint32_t encode_payload(const struct mig_msg *m, uint8_t *p)
{
        switch (m->type) {
        case MIG_DATA:
                put64(p, m->data.offset);
                put32(p + 8, m->data.count);
                put32(p + 12, 0);
                for (uint32_t i = 0; i < m->data.count; i++)
                        put32(p + MIG_DATA_FIXED + 4 * i, mig_page_crc(m->data.pages + (size_t) i * MIG_PAGE_SIZE));
                memcpy(p + MIG_DATA_FIXED + 4 * m->data.count, m->data.pages, (size_t) m->data.count * MIG_PAGE_SIZE);
                return mig_data_length(m->data.count);
        case MIG_ERROR: {
                size_t n = strnlen(m->error.text, MIG_ERROR_TEXT_MAX);

                put32(p, m->error.code);
                put32(p + 4, 0);
                memcpy(p + 8, m->error.text, n);
                return 8 + (uint32_t) n;
        }
        case MIG_HELLO:
                put32(p, m->hello.version);
                put32(p + 4, m->hello.channel);
                memcpy(p + 8, m->hello.nonce, MIG_NONCE_SIZE);
                break;
        case MIG_CHALLENGE:
                put32(p, m->challenge.version);
                put32(p + 4, m->challenge.page_size);
                put64(p + 8, m->challenge.region_size);
                memcpy(p + 16, m->challenge.nonce, MIG_NONCE_SIZE);
                memcpy(p + 16 + MIG_NONCE_SIZE, m->challenge.proof, MIG_PROOF_SIZE);
                memcpy(p + 16 + MIG_NONCE_SIZE + MIG_PROOF_SIZE, m->challenge.salt, MIG_SALT_SIZE);
                break;
        case MIG_AUTH:
                memcpy(p, m->auth.proof, MIG_PROOF_SIZE);
                break;
        case MIG_REQUEST:
                put64(p, m->request.offset);
                put32(p + 8, m->request.count);
                put32(p + 12, 0);
                break;
        case MIG_DIGEST:
                memcpy(p, m->digest.digest, MIG_DIGEST_SIZE);
                break;
        case MIG_DONE:
                put32(p, m->done.status);
                put32(p + 4, 0);
                break;
        default:
                break;
        }
        return fixed_length[m->type];
}

int mig_frame_encode(const struct mig_msg *m, uint8_t *out, size_t size)
{
        uint32_t need = m->type == MIG_DATA ? mig_data_length(m->data.count) : max_length(m->type);
        uint32_t length;

        if (m->type == 0 || m->type >= _MIG_TYPE_MAX || size < MIG_HEADER_SIZE + (size_t) need)
                return -ENOBUFS;
        length = encode_payload(m, out + MIG_HEADER_SIZE);
        mig_header_encode(out, m->type, length);
        return (int) (MIG_HEADER_SIZE + length);
}

int mig_data_verify(const struct mig_msg *m, char *msg, size_t msg_size)
{
        for (uint32_t i = 0; i < m->data.count; i++) {
                uint32_t want = get32(m->data.crcs + 4 * i);
                uint32_t got = mig_page_crc(m->data.pages + (size_t) i * MIG_PAGE_SIZE);

                if (want != got) {
                        snprintf(msg, msg_size, "the page at offset %llu arrived corrupted (crc32 0x%08x, the "
                                 "source sent 0x%08x)", (unsigned long long) (m->data.offset + (uint64_t) i * MIG_PAGE_SIZE),
                                 got, want);
                        return -EBADMSG;
                }
        }
        return 0;
}

int mig_stream_parse(const uint8_t *buf, size_t size, int (*each)(const struct mig_msg *m, void *userdata),
                     void *userdata, char *msg, size_t msg_size)
{
        while (size > 0) {
                _cleanup_free_ struct mig_msg *m = malloc(sizeof(*m));
                enum mig_type type;
                uint32_t length;
                int r;

                if (!m)
                        return -ENOMEM;
                if (size < MIG_HEADER_SIZE) {
                        snprintf(msg, msg_size, "truncated frame: %zu bytes of a %u-byte header", size,
                                 MIG_HEADER_SIZE);
                        return -ENODATA;
                }
                r = mig_header_decode(buf, &type, &length, msg, msg_size);
                if (r < 0)
                        return r;
                if (size - MIG_HEADER_SIZE < length) {
                        snprintf(msg, msg_size, "truncated frame: %s of %u bytes, the stream ends after %zu",
                                 type_names[type], length, size - MIG_HEADER_SIZE);
                        return -ENODATA;
                }
                r = mig_payload_decode(type, buf + MIG_HEADER_SIZE, length, m, msg, msg_size);
                if (r >= 0 && type == MIG_DATA)
                        r = mig_data_verify(m, msg, msg_size);
                if (r >= 0 && each)
                        r = each(m, userdata);
                if (r < 0)
                        return r;
                buf += MIG_HEADER_SIZE + length;
                size -= MIG_HEADER_SIZE + length;
        }
        return 0;
}

int mig_proof(const char *token, bool source, const uint8_t peer_nonce[MIG_NONCE_SIZE],
              const uint8_t own_nonce[MIG_NONCE_SIZE], uint8_t out[MIG_PROOF_SIZE])
{
        static const char label_src[16] = "gmem-mig1-source", label_dst[16] = "gmem-mig1-destin";
        uint8_t data[16 + 2 * MIG_NONCE_SIZE];
        unsigned len = MIG_PROOF_SIZE;

        memcpy(data, source ? label_src : label_dst, 16);
        memcpy(data + 16, peer_nonce, MIG_NONCE_SIZE);
        memcpy(data + 16 + MIG_NONCE_SIZE, own_nonce, MIG_NONCE_SIZE);
        if (!HMAC(EVP_sha256(), token, (int) strlen(token), data, sizeof(data), out, &len) || len != MIG_PROOF_SIZE)
                return -EIO;
        return 0;
}

int mig_region_key(const char *token, const uint8_t salt[MIG_SALT_SIZE], uint8_t out[32])
{
        static const char info[] = "gmem-mig2 region poly1305";
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (char *) token, strlen(token)),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (uint8_t *) salt, MIG_SALT_SIZE),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *) info, sizeof(info) - 1),
                OSSL_PARAM_construct_end(),
        };
        int r = ctx && EVP_KDF_derive(ctx, out, 32, params) == 1 ? 0 : -EIO;

        EVP_KDF_CTX_free(ctx);
        EVP_KDF_free(kdf);
        return r;
}

bool mig_proof_equal(const uint8_t a[MIG_PROOF_SIZE], const uint8_t b[MIG_PROOF_SIZE])
{
        return CRYPTO_memcmp(a, b, MIG_PROOF_SIZE) == 0;
}

int mig_token_check(const char *token, char *msg, size_t msg_size)
{
        size_t n = strlen(token);

        if (n < MIG_TOKEN_MIN || n > MIG_TOKEN_MAX) {
                snprintf(msg, msg_size, "the token is %zu characters long; %u to %u are allowed", n, MIG_TOKEN_MIN,
                         MIG_TOKEN_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++)
                if (token[i] <= ' ' || token[i] >= 0x7f) {
                        snprintf(msg, msg_size, "the token may only hold printable ASCII without spaces "
                                 "(character %zu is 0x%02x)", i, (unsigned char) token[i]);
                        return -EINVAL;
                }
        return 0;
}

int mig_nonce_new(uint8_t out[MIG_NONCE_SIZE])
{
        return RAND_bytes(out, MIG_NONCE_SIZE) == 1 ? 0 : -EIO;
}

int mig_token_new(char **ret)
{
        uint8_t raw[32];
        char *s = malloc(2 * sizeof(raw) + 1);

        if (!s)
                return -ENOMEM;
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                free(s);
                return -EIO;
        }
        for (size_t i = 0; i < sizeof(raw); i++)
                sprintf(s + 2 * i, "%02x", raw[i]);
        *ret = s;
        return 0;
}
