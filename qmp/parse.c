/* QMP framing and message parsing: bytes in, classified messages out.
 * No I/O here, so every byte QEMU can send reaches this code through the
 * fuzzer (tests/fuzz/fuzz-qmp.c) as well as through the client. */
#include <string.h>

#include "qmp.h"
#include "util.h"

/* A partial line may end in the "\r" of a "\r\n" still in flight. */
#define MAX_PARTIAL (MVM_QMP_MAX_LINE + 1)

/* Checks every line that `data` completes or starts, before anything is
 * copied, so an over-long line never makes the buffer grow. */
static int check_line_lengths(const struct mvm_qmp_framer *f, const char *data, size_t len,
                              struct mvm_error **err)
{
    size_t old_len = f->len - f->start;
    const char *old = old_len ? f->buf + f->start : "";
    const char *nl = old_len ? memrchr(old, '\n', old_len) : NULL;
    size_t partial = nl ? old_len - (size_t)(nl + 1 - old) : old_len;

    for (;;) {
        const char *end = memchr(data, '\n', len);
        size_t seg = end ? (size_t)(end - data) : len;
        size_t line = partial + seg;
        if (end && line > 0 && (end > data ? end[-1] : old[old_len - 1]) == '\r')
            line--;
        if (end ? line > MVM_QMP_MAX_LINE : line > MAX_PARTIAL)
            return mvm_error_set(err, 0, "QMP message longer than %d bytes", MVM_QMP_MAX_LINE);
        if (end == NULL)
            return 0;
        partial = 0;
        len -= seg + 1;
        data = end + 1;
    }
}

/* Moves the unconsumed bytes to the front, and gives back the memory of an
 * exceptionally long line once it has been consumed. */
static void framer_compact(struct mvm_qmp_framer *f)
{
    size_t left = f->len - f->start;

    if (left == 0 && f->cap > 64 * 1024) {
        free(f->buf);
        f->buf = NULL;
        f->cap = 0;
    } else if (f->start > 0 && left > 0) {
        memmove(f->buf, f->buf + f->start, left);
    }
    f->len = left;
    f->start = 0;
}

int mvm_qmp_framer_feed(struct mvm_qmp_framer *f, const void *data, size_t len,
                        struct mvm_error **err)
{
    if (len == 0)
        return 0;
    if (check_line_lengths(f, data, len, err) < 0)
        return -1;
    framer_compact(f);
    if (len > f->cap - f->len) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap - f->len < len)
            cap *= 2;
        f->buf = xrealloc(f->buf, cap);
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
    return 0;
}

int mvm_qmp_framer_next(struct mvm_qmp_framer *f, const char **line, size_t *len)
{
    if (f->start == f->len)
        return 0;

    char *begin = f->buf + f->start;
    char *nl = memchr(begin, '\n', f->len - f->start);
    if (nl == NULL)
        return 0;
    f->start = (size_t)(nl + 1 - f->buf);
    if (nl > begin && nl[-1] == '\r')
        nl--;
    /* Terminating in place costs nothing and lets callers print the line. */
    *nl = '\0';
    *line = begin;
    *len = (size_t)(nl - begin);
    return 1;
}

void mvm_qmp_framer_free(struct mvm_qmp_framer *f)
{
    free(f->buf);
    *f = (struct mvm_qmp_framer){0};
}

static int parse_error(json_t *root, struct mvm_qmp_msg *msg, struct mvm_error **err)
{
    json_t *e = json_object_get(root, "error");
    json_t *class = json_object_get(e, "class");
    json_t *desc = json_object_get(e, "desc");

    if (!json_is_object(e))
        return mvm_error_set(err, 0, "QMP error reply: \"error\" is not an object");
    if (!json_is_string(class) || !json_is_string(desc))
        return mvm_error_set(err, 0, "QMP error reply: \"class\" and \"desc\" must be strings");
    msg->kind = MVM_QMP_ERROR;
    msg->error_class = json_string_value(class);
    msg->error_desc = json_string_value(desc);
    msg->id = json_object_get(root, "id");
    return 0;
}

static int parse_event(json_t *root, struct mvm_qmp_msg *msg, struct mvm_error **err)
{
    json_t *name = json_object_get(root, "event");
    json_t *data = json_object_get(root, "data");

    if (!json_is_string(name))
        return mvm_error_set(err, 0, "QMP event: \"event\" is not a string");
    if (data == NULL) {
        /* Owned by root like every other member, so clearing stays uniform. */
        data = json_object();
        if (data == NULL || json_object_set_new(root, "data", data) < 0)
            return mvm_error_set(err, ENOMEM, "QMP event");
    } else if (!json_is_object(data)) {
        return mvm_error_set(err, 0, "QMP event %s: \"data\" is not an object",
                             json_string_value(name));
    }
    msg->kind = MVM_QMP_EVENT;
    msg->event = json_string_value(name);
    msg->data = data;
    return 0;
}

/* Exactly one of the members that name a kind must be present: a message
 * that could be read two ways is not one we should guess about. */
static int classify(json_t *root, struct mvm_qmp_msg *msg, struct mvm_error **err)
{
    static const char *const keys[] = {"QMP", "return", "error", "event"};
    const char *key = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (json_object_get(root, keys[i]) == NULL)
            continue;
        if (key != NULL)
            return mvm_error_set(err, 0, "QMP message has both \"%s\" and \"%s\"", key, keys[i]);
        key = keys[i];
    }
    if (key == NULL)
        return mvm_error_set(err, 0, "QMP message is neither a greeting, a reply nor an event");
    if (strcmp(key, "QMP") == 0) {
        if (!json_is_object(json_object_get(root, "QMP")))
            return mvm_error_set(err, 0, "QMP greeting: \"QMP\" is not an object");
        msg->kind = MVM_QMP_GREETING;
        return 0;
    }
    if (strcmp(key, "return") == 0) {
        msg->kind = MVM_QMP_RETURN;
        msg->ret = json_object_get(root, "return");
        msg->id = json_object_get(root, "id");
        return 0;
    }
    if (strcmp(key, "error") == 0)
        return parse_error(root, msg, err);
    return parse_event(root, msg, err);
}

int mvm_qmp_parse(const char *line, size_t len, struct mvm_qmp_msg *msg, struct mvm_error **err)
{
    json_error_t jerr;

    *msg = (struct mvm_qmp_msg){0};
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mvm_error_set(err, 0, "malformed QMP message at column %d: %s", jerr.column,
                             jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mvm_error_set(err, 0, "QMP message is not a JSON object");
    }
    if (classify(root, msg, err) < 0) {
        json_decref(root);
        *msg = (struct mvm_qmp_msg){0};
        return -1;
    }
    msg->root = root;
    return 0;
}

void mvm_qmp_msg_clear(struct mvm_qmp_msg *msg)
{
    json_decref(msg->root);
    *msg = (struct mvm_qmp_msg){0};
}
