/*
 * static_files.c — the web page (seed 000 v4's report status app) served from disk.
 *
 * The files live in HERALD_STATIC_DIR, or by default in sidecar/static found relative to
 * the running binary (/proc/self/exe → ../static for sidecar/<build>/herald-sidecar,
 * ../../static for sidecar/<build>/asan/herald-sidecar). No build step: what is on disk is
 * what the browser gets, with "cache-control: no-cache" so an edited page shows at once.
 *
 * Safety: only GET and HEAD; the path used is h2o's normalised path (percent-decoded, dot
 * segments resolved); a segment that starts with "." (hidden files, "..") is refused, and the
 * resolved real path of the file must lie inside the real path of the directory, so neither
 * "../" nor a symbolic link can reach outside it. Anything not served returns -1 and the
 * caller answers 404 with a JSON error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http_util.h"
#include "log.h"
#include "modules.h"

#define MODULE "static"
#define MAX_STATIC_FILE (8 * 1024 * 1024)

static char static_root[PATH_MAX]; /* real path of the directory, "" until resolved */
static int root_resolved;          /* 1 = found, -1 = not found (logged once) */

/* content_type_of picks the media type from the file name's extension. */
static const char *content_type_of(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
    };
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot != NULL && (slash == NULL || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* try_root makes candidate the static root if it is a directory holding index.html. */
static int try_root(const char *candidate)
{
    char real[PATH_MAX], index[PATH_MAX + 16];
    struct stat st;
    if (realpath(candidate, real) == NULL || stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return -1;
    snprintf(index, sizeof(index), "%s/index.html", real);
    if (access(index, R_OK) != 0)
        return -1;
    snprintf(static_root, sizeof(static_root), "%s", real);
    return 0;
}

/* resolve_root finds the directory once: HERALD_STATIC_DIR, else beside the binary. */
static int resolve_root(void)
{
    if (root_resolved != 0)
        return root_resolved > 0 ? 0 : -1;
    if (hs_config.static_dir != NULL && hs_config.static_dir[0] != '\0') {
        if (try_root(hs_config.static_dir) == 0) {
            root_resolved = 1;
        } else {
            hs_warn(MODULE, "HERALD_STATIC_DIR %s is not a readable directory with an index.html", hs_config.static_dir);
            root_resolved = -1;
        }
    } else {
        char exe[PATH_MAX], candidate[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash != NULL)
                *slash = '\0';
            static const char *const rel[] = {"../static", "../../static", "static"};
            for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]) && root_resolved == 0; i++) {
                snprintf(candidate, sizeof(candidate), "%s/%s", exe, rel[i]);
                if (try_root(candidate) == 0)
                    root_resolved = 1;
            }
        }
        if (root_resolved == 0) {
            hs_warn(MODULE, "no web page directory beside the binary (set HERALD_STATIC_DIR)");
            root_resolved = -1;
        }
    }
    if (root_resolved > 0)
        hs_info(MODULE, "serving the web page from %s", static_root);
    return root_resolved > 0 ? 0 : -1;
}

/* path_is_safe: every segment is non-empty-or-trailing and does not start with '.'. */
static int path_is_safe(const char *p, size_t len)
{
    if (len == 0 || p[0] != '/')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\0' || p[i] == '\\')
            return 0;
        if (p[i] == '/' && i + 1 < len && p[i + 1] == '.')
            return 0;
    }
    return 1;
}

int hs_static_serve(h2o_req_t *req)
{
    if (!hs_http_method_is(req, "GET") && !hs_http_method_is(req, "HEAD"))
        return -1;
    if (resolve_root() != 0)
        return -1;
    h2o_iovec_t norm = req->path_normalized;
    if (!path_is_safe(norm.base, norm.len) || norm.len > 1024)
        return -1;

    char rel[1100], full[PATH_MAX + 1200], real[PATH_MAX];
    if (norm.base[norm.len - 1] == '/')
        snprintf(rel, sizeof(rel), "%.*sindex.html", (int)norm.len, norm.base);
    else
        snprintf(rel, sizeof(rel), "%.*s", (int)norm.len, norm.base);
    snprintf(full, sizeof(full), "%s%s", static_root, rel);
    if (realpath(full, real) == NULL)
        return -1;
    size_t rootlen = strlen(static_root);
    if (strncmp(real, static_root, rootlen) != 0 || real[rootlen] != '/')
        return -1;

    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_STATIC_FILE) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *body = h2o_mem_alloc_pool(&req->pool, size + 1);
    while (got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        hs_http_send_error(req, 500, "could not read %s", rel);
        return 0;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    hs_http_send(req, 200, content_type_of(real), body, size);
    return 0;
}
