/* relay_worker.c — see relay_worker.h. */
#include "relay_worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>

static const char PANIC[] = "{\"message\": panic}";

int hs_relay_is_panic(const char *data, size_t len)
{
    while (len > 0 && (*data == ' ' || *data == '\t' || *data == '\r' || *data == '\n'))
        data++, len--;
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t' || data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    return len == sizeof(PANIC) - 1 && memcmp(data, PANIC, len) == 0;
}

static void append_escaped(hs_strbuf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '\\' && c != 0x7f)
            continue;
        hs_strbuf_append(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '\\': hs_strbuf_append(out, "\\\\", 2); break;
        case '\n': hs_strbuf_append(out, "\\n", 2); break;
        case '\r': hs_strbuf_append(out, "\\r", 2); break;
        case '\t': hs_strbuf_append(out, "\\t", 2); break;
        default: {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            hs_strbuf_append(out, esc, 4);
        }
        }
    }
    hs_strbuf_append(out, s + run, len - run);
}

int hs_relay_format_tweet(const char *data, size_t len, int slot, int pid, hs_strbuf_t *out)
{
    json_error_t err;
    json_t *root = json_loadb(data, len, 0, &err);
    if (root == NULL) {
        hs_strbuf_printf(out, "invalid JSON: %s (line %d, column %d)", err.text, err.line, err.column);
        return HS_RELAY_INVALID_JSON;
    }
    json_t *text = json_object_get(json_object_get(json_object_get(root, "message"), "tweet"), "text");
    if (!json_is_string(text)) {
        hs_strbuf_appends(out, "no string message.tweet.text");
        json_decref(root);
        return HS_RELAY_NO_TEXT;
    }
    hs_strbuf_printf(out, "[worker %d pid %d] ", slot, pid);
    append_escaped(out, json_string_value(text), json_string_length(text));
    json_decref(root);
    return HS_RELAY_OK;
}

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_full(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++, cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int hs_relay_worker_main(int argc, char **argv)
{
    int slot = argc > 2 ? atoi(argv[2]) : 0, fd = HS_RELAY_WORKER_FD, pid = (int)getpid();
    /* Die with the relay thread that spawned us; keep nothing else the sidecar had open. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close_range(HS_RELAY_WORKER_FD + 1, ~0u, 0);
    signal(SIGPIPE, SIG_DFL);

    hs_strbuf_t out = {0};
    char *payload = NULL;
    size_t cap = 0;
    for (;;) {
        hs_relay_frame_hdr_t hdr;
        if (read_full(fd, &hdr, sizeof(hdr)) != 0)
            break; /* the relay closed the channel: stop */
        if (hdr.len > HS_RELAY_FRAME_MAX) {
            fprintf(stderr, "relay worker %d: frame of %u bytes refused\n", slot, hdr.len);
            return 2;
        }
        if (hdr.len + 1 > cap) {
            cap = hdr.len + 1;
            if ((payload = realloc(payload, cap)) == NULL)
                abort();
        }
        if (read_full(fd, payload, hdr.len) != 0)
            break;
        payload[hdr.len] = '\0';
        if (hs_relay_is_panic(payload, hdr.len))
            abort(); /* the seed's "panic" message: crash for real */
        hs_strbuf_reset(&out);
        hs_strbuf_append(&out, "", 0);
        unsigned char status = (unsigned char)hs_relay_format_tweet(payload, hdr.len, slot, pid, &out);
        hs_relay_frame_hdr_t rh = {.len = (uint32_t)(out.len + 1), .upstream = hdr.upstream, .seq = hdr.seq};
        struct iovec iov[3] = {{&rh, sizeof(rh)}, {&status, 1}, {out.base, out.len}};
        if (write_full(fd, iov, 3) != 0)
            break;
    }
    free(payload);
    hs_strbuf_free(&out);
    return 0;
}
