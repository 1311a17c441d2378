"""Finding Edge TPUs: libedgetpu's own device list, USB ids, PCIe device nodes, permissions.

``edgetpu_list_devices`` and ``edgetpu_version`` are libedgetpu's C API (edgetpu_c.h), called
through ctypes as pycoral's list_edge_tpus does in C++. Not verified on hardware: no Edge
TPU is attached to the machines this was built on.
"""
from __future__ import annotations

import ctypes
import glob
import os

USB_IDS = {("1a6e", "089a"): "Coral USB Accelerator (before first use: runtime not loaded yet)",
           ("18d1", "9302"): "Coral USB Accelerator (initialized)"}
_DEVICE_TYPES = {0: "pci", 1: "usb"}


class _Device(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def runtime_version(library: str) -> str | None:
    try:
        lib = ctypes.CDLL(library)
        lib.edgetpu_version.restype = ctypes.c_char_p
        return lib.edgetpu_version().decode()
    except (OSError, AttributeError):
        return None


def list_devices(library: str) -> list[dict]:
    """Edge TPUs libedgetpu can see, as {"type": "usb"|"pci", "path": ...}; [] without the library."""
    try:
        lib = ctypes.CDLL(library)
        lib.edgetpu_list_devices.restype = ctypes.POINTER(_Device)
        lib.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    except (OSError, AttributeError):
        return []
    count = ctypes.c_size_t(0)
    devices = lib.edgetpu_list_devices(ctypes.byref(count))
    found = [{"type": _DEVICE_TYPES.get(devices[i].type, str(devices[i].type)),
              "path": (devices[i].path or b"").decode()} for i in range(count.value)]
    if devices and hasattr(lib, "edgetpu_free_devices"):
        lib.edgetpu_free_devices(devices)
    return found


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def usb_accelerators(sysfs: str = "/sys/bus/usb/devices") -> list[dict]:
    """Coral USB Accelerators by vendor:product id, and whether this user may open their device node."""
    found = []
    for dev in sorted(glob.glob(os.path.join(sysfs, "*"))):
        ids = (_read(os.path.join(dev, "idVendor")), _read(os.path.join(dev, "idProduct")))
        if ids not in USB_IDS:
            continue
        bus, num = _read(os.path.join(dev, "busnum")), _read(os.path.join(dev, "devnum"))
        node = f"/dev/bus/usb/{int(bus or 0):03d}/{int(num or 0):03d}"
        found.append({"id": ":".join(ids), "what": USB_IDS[ids], "node": node,
                      "accessible": os.access(node, os.R_OK | os.W_OK)})
    return found


def pcie_accelerators(pattern: str = "/dev/apex_*") -> list[dict]:
    return [{"node": node, "accessible": os.access(node, os.R_OK | os.W_OK)} for node in sorted(glob.glob(pattern))]
