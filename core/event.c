/* event.c - see event.h. */
#include "event.h"

#include <string.h>
#include <strings.h>

static const char *const schema_names[MF_SCHEMA_COUNT] = {"ocsf", "ecs", "raw"};

static const char *const area_names[MF_AREA_COUNT] = {
    "identity_access",
    "data_protection",
    "collaboration_sharing",
    "device_posture",
    "monitoring_response",
};

const char *
mf_schema_name(enum mf_schema s)
{
    return (unsigned)s < MF_SCHEMA_COUNT ? schema_names[s] : "?";
}

int
mf_schema_parse(const char *s, enum mf_schema *out)
{
    for (unsigned i = 0; s && i < MF_SCHEMA_COUNT; i++) {
        if (strcasecmp(s, schema_names[i]) == 0) {
            *out = (enum mf_schema)i;
            return 0;
        }
    }
    return -1;
}

const char *
mf_area_name(enum mf_area a)
{
    return (unsigned)a < MF_AREA_COUNT ? area_names[a] : "unknown";
}

int
mf_area_parse(const char *s, enum mf_area *out)
{
    for (unsigned i = 0; s && i < MF_AREA_COUNT; i++) {
        if (strcmp(s, area_names[i]) == 0) {
            if (out)
                *out = (enum mf_area)i;
            return 0;
        }
    }
    return -1;
}

void
mf_event_init(struct mf_event *ev, size_t max_form)
{
    memset(ev, 0, sizeof(*ev));
    for (int f = 0; f < MF_EVENT_FORMS; f++)
        mf_buf_init(&ev->form[f].text, max_form);
    mf_event_reset(ev);
}

void
mf_event_fini(struct mf_event *ev)
{
    for (int f = 0; f < MF_EVENT_FORMS; f++)
        mf_buf_fini(&ev->form[f].text);
}

void
mf_event_reset(struct mf_event *ev)
{
    struct mf_event_form keep[MF_EVENT_FORMS];

    for (int f = 0; f < MF_EVENT_FORMS; f++) {
        keep[f].text = ev->form[f].text;
        mf_buf_reset(&keep[f].text);
    }
    memset(ev, 0, offsetof(struct mf_event, form));
    ev->id = ev->tenant_id = ev->tenant = ev->operation = ev->client_ip = "";
    ev->record_type = -1;
    ev->severity = 1;
    for (int f = 0; f < MF_EVENT_FORMS; f++)
        ev->form[f] = (struct mf_event_form){.text = keep[f].text};
    ev->render = NULL;
    ev->render_ud = NULL;
    ev->error[0] = '\0';
}

void
mf_event_shrink(struct mf_event *ev, size_t keep)
{
    for (int f = 0; f < MF_EVENT_FORMS; f++)
        if (ev->form[f].text.cap > keep)
            mf_buf_shrink(&ev->form[f].text, keep);
}

const struct mf_event_form *
mf_event_form(struct mf_event *ev, enum mf_schema schema, bool keep_raw)
{
    struct mf_event_form *f;

    if ((unsigned)schema >= MF_SCHEMA_COUNT)
        return NULL;
    f = &ev->form[schema * 2 + (keep_raw ? 1 : 0)];
    if (f->made)
        return f;
    if (f->failed || !ev->render)
        return NULL;
    mf_buf_reset(&f->text);
    if (ev->render(ev, schema, keep_raw, f) != 0) {
        f->failed = true;
        return NULL;
    }
    f->made = true;
    return f;
}

size_t
mf_event_join_tags(const struct mf_event *ev, char sep, char *buf, size_t n)
{
    size_t o = 0;

    if (n == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ev->n_tags; i++) {
        const char *id = ev->tags[i].id;
        size_t l = id ? strlen(id) : 0;

        if (!l || o + l + 2 > n)     /* whole ids only */
            continue;
        if (o)
            buf[o++] = sep;
        memcpy(buf + o, id, l);
        o += l;
        buf[o] = '\0';
    }
    return o;
}
