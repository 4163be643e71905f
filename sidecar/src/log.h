/*
 * log.h — one line per notable event, on stderr: "<ISO time> <level> <module>: <message>".
 * Thread-safe (one write(2) per line). HERALD_LOG_LEVEL=debug|info|warn|error (default info).
 */
#ifndef HS_LOG_H
#define HS_LOG_H

enum hs_log_level { HS_LOG_DEBUG, HS_LOG_INFO, HS_LOG_WARN, HS_LOG_ERROR };

void hs_log_set_level(const char *name);
void hs_log(enum hs_log_level level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define hs_debug(module, ...) hs_log(HS_LOG_DEBUG, module, __VA_ARGS__)
#define hs_info(module, ...) hs_log(HS_LOG_INFO, module, __VA_ARGS__)
#define hs_warn(module, ...) hs_log(HS_LOG_WARN, module, __VA_ARGS__)
#define hs_error(module, ...) hs_log(HS_LOG_ERROR, module, __VA_ARGS__)

#endif
