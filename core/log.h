/* log.h - leveled logging with an injectable sink.
 *
 * mf_log() skips argument evaluation below the current level. Never log
 * secrets or full record bodies above debug. */
#ifndef MF_LOG_H
#define MF_LOG_H

enum mf_log_level { MF_LOG_ERROR = 0, MF_LOG_WARN, MF_LOG_INFO, MF_LOG_DEBUG };

/* Line format on stderr: "ts=... level=... <message>" or one JSON object
 * {"ts","level","msg"[,"repeated"]}. */
enum mf_log_format_kind { MF_LOG_KV = 0, MF_LOG_JSON };

typedef void (*mf_log_sink_fn)(enum mf_log_level lvl, const char *msg, void *ud);

extern enum mf_log_level mf_log_threshold;

void mf_log_set_level(enum mf_log_level lvl);
void mf_log_set_format(enum mf_log_format_kind f);
/* The same message (same level and text) within this many ms of its first
 * copy is suppressed; the next copy after the window says how many were.
 * 0 disables. Default 10000. */
void mf_log_set_repeat_window(long ms);
int mf_log_level_parse(const char *s, enum mf_log_level *out);  /* 0 / -1 */
void mf_log_set_sink(mf_log_sink_fn fn, void *ud);  /* NULL restores stderr */
void mf_log_write(enum mf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Without repeat suppression: lines an operator asked for (a reload's
 * report), each of which must appear. */
void mf_log_always(enum mf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *mf_log_level_str(enum mf_log_level lvl);

#define mf_log(lvl, ...)                                                     \
    do {                                                                     \
        if ((lvl) <= mf_log_threshold)                                       \
            mf_log_write((lvl), __VA_ARGS__);                                \
    } while (0)

#endif
