/* Unit tests for mvm doctor's pure part: the report as lines and JSON,
 * the exit status, and reading QEMU's answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "doctor.h"

static void test_text_and_status(void **state)
{
    (void)state;
    struct mvm_doctor_report r = {0};
    mvm_doctor_add(&r, "kvm", MVM_DOCTOR_WARN, "use real hardware", "PVM: %s", "TCG instead");
    mvm_doctor_add(&r, "qemu", MVM_DOCTOR_OK, "never shown", "QEMU %d.%d", 7, 2);
    char *t = mvm_doctor_text(&r);
    assert_non_null(strstr(t, "warn  kvm           PVM: TCG instead; fix: use real hardware\n"));
    assert_non_null(strstr(t, "ok    qemu          QEMU 7.2\n"));
    assert_null(strstr(t, "never shown")); /* a fix only where something is wrong */
    assert_non_null(strstr(t, "mvm run can work here (1 warning)\n"));
    assert_int_equal(mvm_doctor_exit_status(&r), 0);
    free(t);

    /* A control character from a tool's message is made printable. */
    mvm_doctor_add(&r, "kernel", MVM_DOCTOR_FAIL, "install one", "bad\033[2J");
    t = mvm_doctor_text(&r);
    assert_non_null(strstr(t, "FAIL  kernel        bad?[2J; fix: install one\n"));
    assert_non_null(strstr(t, "mvm run cannot work here: 1 check failed"));
    assert_int_equal(mvm_doctor_exit_status(&r), 1);
    free(t);
    mvm_doctor_report_clear(&r);
    assert_int_equal(r.n, 0);
}

static void test_json(void **state)
{
    (void)state;
    struct mvm_doctor_report r = {0};
    mvm_doctor_add(&r, "tun", MVM_DOCTOR_OK, NULL, "/dev/net/tun");
    mvm_doctor_add(&r, "qemu", MVM_DOCTOR_FAIL, "apt-get install qemu-system-x86", "not found");
    char *text = mvm_doctor_json(&r);
    json_t *a = json_loads(text, 0, NULL);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 2);
    json_t *c0 = json_array_get(a, 0), *c1 = json_array_get(a, 1);
    assert_string_equal(json_string_value(json_object_get(c0, "check")), "tun");
    assert_string_equal(json_string_value(json_object_get(c0, "status")), "ok");
    assert_true(json_is_null(json_object_get(c0, "fix")));
    assert_string_equal(json_string_value(json_object_get(c1, "status")), "fail");
    assert_string_equal(json_string_value(json_object_get(c1, "detail")), "not found");
    assert_string_equal(json_string_value(json_object_get(c1, "fix")),
                        "apt-get install qemu-system-x86");
    json_decref(a);
    free(text);
    mvm_doctor_report_clear(&r);
    text = mvm_doctor_json(&r);
    assert_string_equal(text, "[]");
    free(text);
}

static void test_qemu_version(void **state)
{
    (void)state;
    unsigned v[3];
    assert_int_equal(mvm_doctor_qemu_version("QEMU emulator version 7.2.22 (Debian "
                                             "1:7.2+dfsg-7+deb12u18+b3)\nCopyright...\n",
                                             v),
                     0);
    assert_int_equal(v[0], 7);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 22);
    assert_int_equal(mvm_doctor_qemu_version("QEMU emulator version 8.1\n", v), 0);
    assert_int_equal(v[1], 1);
    assert_int_equal(v[2], 0);
    assert_int_equal(mvm_doctor_qemu_version("qemu-system-x86_64: unknown option\n", v), -1);
    assert_int_equal(mvm_doctor_qemu_version(NULL, v), -1);
}

static void test_qemu_lacks(void **state)
{
    (void)state;
    const char *devices = "Storage devices:\n"
                          "name \"virtio-blk-device\", bus virtio-bus\n"
                          "name \"virtio-blk-pci\", bus PCI, alias \"virtio-blk\"\n"
                          "name \"vhost-user-fs-device-x\", bus virtio-bus\n";
    const char *want[] = {"virtio-blk-device", "vhost-user-fs-device", "virtio-blk"};
    char *lacks = mvm_doctor_qemu_lacks(devices, want, 2, false);
    /* A longer name or an alias is not the device. */
    assert_string_equal(lacks, "vhost-user-fs-device");
    free(lacks);
    lacks = mvm_doctor_qemu_lacks(devices, want + 2, 1, false);
    assert_string_equal(lacks, "virtio-blk");
    free(lacks);
    assert_null(mvm_doctor_qemu_lacks(devices, want, 1, false));

    const char *machines = "Supported machines are:\n"
                           "microvm              microvm (i386)\n"
                           "q35                  Standard PC (alias of pc-q35-7.2)\n";
    const char *m[] = {"microvm", "q35", "pc"};
    assert_null(mvm_doctor_qemu_lacks(machines, m, 2, true));
    lacks = mvm_doctor_qemu_lacks(machines, m, 3, true);
    assert_string_equal(lacks, "pc");
    free(lacks);
    lacks = mvm_doctor_qemu_lacks("", m, 2, true);
    assert_string_equal(lacks, "microvm, q35");
    free(lacks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_status),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_qemu_version),
        cmocka_unit_test(test_qemu_lacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
