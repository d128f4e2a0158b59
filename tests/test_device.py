"""Where a job computes: its process set-up (mvcl.device)."""

import platform
import subprocess
import sys

import pytest

# malloc, fill and free a 64 MB block 30 times (as a forward pass does with its activations), then print the
# process's minor page faults.
_CHURN = """
import ctypes, ctypes.util, resource, sys
if sys.argv[1] == "keep":
    from mvcl.device import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_kept_memory_is_not_faulted_in_again_by_every_large_allocation():
    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
        return int(run.stdout)

    default, kept = faults("default"), faults("keep")
    # glibc's default unmaps each freed 64 MB buffer: 30 x 16k pages faulted in; kept, the first only
    assert default > 30 * 10_000
    assert kept < default / 5


@pytest.mark.parametrize(
    ("cpuinfo", "vendor"),
    [
        ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n", "AuthenticAMD"),
        ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n", "GenuineIntel"),
        ("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n", ""),  # ARM: no vendor_id line
    ],
)
def test_the_cpu_vendor_is_read_from_proc_cpuinfo(cpuinfo, vendor):
    from unittest import mock

    from mvcl import device

    read = device.cpuinfo.__wrapped__  # uncached
    with mock.patch("builtins.open", mock.mock_open(read_data=cpuinfo)):
        assert read("vendor_id") == vendor
        assert read("no such key") == ""
        with mock.patch.object(device, "cpuinfo", read):
            assert device.cpu_vendor() == vendor
    with mock.patch("builtins.open", side_effect=FileNotFoundError("/proc/cpuinfo")):
        assert read("vendor_id") == ""
