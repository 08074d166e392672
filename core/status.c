#include "status.h"

const char *
mf_status_str(enum mf_status st)
{
    switch (st) {
    case MF_OK:
        return "ok";
    case MF_RETRY:
        return "retry";
    case MF_DROP:
        return "drop";
    case MF_FATAL:
        return "fatal";
    }
    return "unknown";
}
