/* Replays a libFuzzer corpus (files or directories given as arguments)
 * through LLVMFuzzerTestOneInput, so every build exercises the corpora
 * under CTest without needing clang's fuzzer runtime. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    size_t len = 0;
    char *data = read_file(path, 16 * 1024 * 1024, &len);
    if (data == NULL) {
        perror(path);
        return -1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    return 0;
}

static int replay(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *child = xasprintf("%s/%s", path, de->d_name);
        if (replay(child, count) < 0)
            rc = -1;
        free(child);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0;
    for (int i = 1; i < argc; i++)
        if (replay(argv[i], &count) < 0)
            return 1;
    if (count == 0) {
        fprintf(stderr, "no corpus inputs found: a replay that runs nothing proves nothing\n");
        return 1;
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
