/* log.h - leveled logging with an injectable sink.
 *
 * mf_log() skips argument evaluation below the current level. Never log
 * secrets or full record bodies above debug. */
#ifndef MF_LOG_H
#define MF_LOG_H

enum mf_log_level { MF_LOG_ERROR = 0, MF_LOG_WARN, MF_LOG_INFO, MF_LOG_DEBUG };

typedef void (*mf_log_sink_fn)(enum mf_log_level lvl, const char *msg, void *ud);

extern enum mf_log_level mf_log_threshold;

void mf_log_set_level(enum mf_log_level lvl);
int mf_log_level_parse(const char *s, enum mf_log_level *out);  /* 0 / -1 */
void mf_log_set_sink(mf_log_sink_fn fn, void *ud);  /* NULL restores stderr */
void mf_log_write(enum mf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *mf_log_level_str(enum mf_log_level lvl);

#define mf_log(lvl, ...)                                                     \
    do {                                                                     \
        if ((lvl) <= mf_log_threshold)                                       \
            mf_log_write((lvl), __VA_ARGS__);                                \
    } while (0)

#endif
