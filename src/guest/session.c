/* Reads the session description the host put into the per-session part of
 * the initramfs.  It carries no secrets: those come over the port. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

static int get_string(json_t *obj, const char *key, char **out, char *why, size_t whylen)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        snprintf(why, whylen, "session description: '%s' missing or not a string", key);
        return -1;
    }
    *out = strdup(json_string_value(v));
    return *out ? 0 : -1;
}

static int get_id(json_t *obj, const char *key, unsigned *out, char *why, size_t whylen)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xfffffffe) {
        snprintf(why, whylen, "session description: '%s' missing or not an id", key);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int load_shares(json_t *arr, struct guest_session *s, char *why, size_t whylen)
{
    if (arr == NULL)
        return 0;
    if (!json_is_array(arr)) {
        snprintf(why, whylen, "session description: 'shares' is not an array");
        return -1;
    }
    s->nshares = json_array_size(arr);
    s->shares = calloc(s->nshares ? s->nshares : 1, sizeof *s->shares);
    if (s->shares == NULL)
        return -1;
    for (size_t i = 0; i < s->nshares; i++) {
        json_t *sh = json_array_get(arr, i);
        if (get_string(sh, "tag", &s->shares[i].tag, why, whylen) < 0 ||
            get_string(sh, "path", &s->shares[i].path, why, whylen) < 0)
            return -1;
        s->shares[i].ro = json_is_true(json_object_get(sh, "ro"));
        s->shares[i].overlay = json_is_true(json_object_get(sh, "overlay"));
        if (s->shares[i].path[0] != '/') {
            snprintf(why, whylen, "session description: share path is not absolute");
            return -1;
        }
    }
    return 0;
}

static bool absolute(const char *p)
{
    return p[0] == '/';
}

static int load_links(json_t *arr, struct guest_session *s, char *why, size_t whylen)
{
    if (arr != NULL && !json_is_array(arr)) {
        snprintf(why, whylen, "session description: 'links' is not an array");
        return -1;
    }
    s->nlinks = json_array_size(arr);
    s->links = calloc(s->nlinks ? s->nlinks : 1, sizeof *s->links);
    if (s->links == NULL)
        return -1;
    for (size_t i = 0; i < s->nlinks; i++) {
        json_t *l = json_array_get(arr, i);
        if (get_string(l, "path", &s->links[i].path, why, whylen) < 0 ||
            get_string(l, "target", &s->links[i].target, why, whylen) < 0)
            return -1;
        if (!absolute(s->links[i].path) || !absolute(s->links[i].target)) {
            snprintf(why, whylen, "session description: link paths must be absolute");
            return -1;
        }
    }
    return 0;
}

static int load_disks(json_t *arr, struct guest_session *s, char *why, size_t whylen)
{
    if (arr != NULL && !json_is_array(arr)) {
        snprintf(why, whylen, "session description: 'disks' is not an array");
        return -1;
    }
    s->ndisks = json_array_size(arr);
    s->disks = calloc(s->ndisks ? s->ndisks : 1, sizeof *s->disks);
    if (s->disks == NULL)
        return -1;
    for (size_t i = 0; i < s->ndisks; i++) {
        json_t *d = json_array_get(arr, i);
        if (get_string(d, "serial", &s->disks[i].serial, why, whylen) < 0 ||
            get_string(d, "path", &s->disks[i].path, why, whylen) < 0)
            return -1;
        if (!absolute(s->disks[i].path) || strchr(s->disks[i].serial, '/')) {
            snprintf(why, whylen, "session description: bad disk");
            return -1;
        }
    }
    return 0;
}

static int load_bins(json_t *arr, struct guest_session *s, char *why, size_t whylen)
{
    if (arr != NULL && !json_is_array(arr)) {
        snprintf(why, whylen, "session description: 'path' is not an array");
        return -1;
    }
    s->nbins = json_array_size(arr);
    s->bins = calloc(s->nbins + 1, sizeof *s->bins);
    if (s->bins == NULL)
        return -1;
    for (size_t i = 0; i < s->nbins; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || !absolute(json_string_value(v)) ||
            strchr(json_string_value(v), ':')) {
            snprintf(why, whylen, "session description: 'path' entries must be absolute");
            return -1;
        }
        if ((s->bins[i] = strdup(json_string_value(v))) == NULL)
            return -1;
    }
    return 0;
}

int guest_session_load(const char *path, struct guest_session *s, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(why, whylen, "reading %s: %s", path, jerr.text);
        return -1;
    }
    json_t *user = json_object_get(root, "user");
    unsigned uid = 0, gid = 0;
    int rc = -1;
    if (get_string(root, "hostname", &s->hostname, why, whylen) < 0 ||
        get_string(root, "cwd", &s->cwd, why, whylen) < 0 ||
        (!json_is_string(json_object_get(root, "image")) &&
         get_string(root, "usr_tag", &s->usr_tag, why, whylen) < 0) ||
        get_string(user, "name", &s->user, why, whylen) < 0 ||
        get_string(user, "home", &s->home, why, whylen) < 0 ||
        get_string(user, "shell", &s->shell, why, whylen) < 0 ||
        get_id(user, "uid", &uid, why, whylen) < 0 || get_id(user, "gid", &gid, why, whylen) < 0 ||
        load_shares(json_object_get(root, "shares"), s, why, whylen) < 0 ||
        load_links(json_object_get(root, "links"), s, why, whylen) < 0 ||
        load_bins(json_object_get(root, "path"), s, why, whylen) < 0 ||
        load_disks(json_object_get(root, "disks"), s, why, whylen) < 0 ||
        guest_net_parse(json_object_get(root, "net"), &s->net, why, whylen) < 0)
        goto out;
    s->rootfs = json_is_true(json_object_get(root, "rootfs"));
    json_t *image = json_object_get(root, "image");
    if (json_is_string(image))
        s->image = strdup(json_string_value(image));
    json_t *scratch = json_object_get(root, "scratch");
    if (json_is_string(scratch))
        s->scratch = strdup(json_string_value(scratch));
    json_t *group = json_object_get(user, "group");
    if (json_is_string(group))
        s->group = strdup(json_string_value(group));
    /* The host's system accounts, for dpkg: lines as in passwd(5) and
     * group(5). */
    json_t *accounts = json_object_get(root, "accounts");
    json_t *pw = json_object_get(accounts, "passwd"), *gr = json_object_get(accounts, "group");
    if (json_is_string(pw) && json_is_string(gr)) {
        s->sys_passwd = strdup(json_string_value(pw));
        s->sys_group = strdup(json_string_value(gr));
    }
    s->uid = uid;
    s->gid = gid;
    if (s->home[0] != '/' || s->cwd[0] != '/') {
        snprintf(why, whylen, "session description: home and cwd must be absolute");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
