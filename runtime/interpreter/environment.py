"""What this machine can run, and the one command for each missing piece (for `edgelite doctor`).

Install commands are for Raspberry Pi OS / Debian. Nothing here installs anything.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import sys

from edgelite.runtime.interpreter import edgetpu
from edgelite.runtime.interpreter.backend import INSTALL_LITERT, INSTALL_TFLITE, backend_report
from edgelite.runtime.interpreter.delegates import GPU_LIBRARY_ENV, INSTALL_HINTS, library_for, probe_library

INSTALL = {
    "backend": f"{INSTALL_LITERT}   (older Pi OS / Coral images: {INSTALL_TFLITE})",
    "libedgetpu": INSTALL_HINTS["edgetpu"],
    "usb_permission": "sudo usermod -aG plugdev $USER   (libedgetpu1-std installs the udev rule), then log in again "
                      "and replug the accelerator",
    "pcie_driver": "sudo apt-get install gasket-dkms libedgetpu1-std   (from the Coral apt repository), then reboot",
    "pcie_permission": "sudo groupadd -f apex && sudo usermod -aG apex $USER, plus the udev rule "
                       "SUBSYSTEM==\"apex\", MODE=\"0660\", GROUP=\"apex\" (Coral's M.2/PCIe guide)",
    "opencl": "sudo apt-get install ocl-icd-libopencl1 mesa-opencl-icd",
    "vulkan": "sudo apt-get install libvulkan1 mesa-vulkan-drivers",
    "gpu_delegate": INSTALL_HINTS["gpu"],
}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _library(name: str) -> dict:
    problem = probe_library(name)
    return {"library": name, "found": problem is None, "detail": "loads" if problem is None else problem}


def edgetpu_report() -> dict:
    library = library_for("edgetpu")
    lib = _library(library)
    return {**lib, "runtime_version": edgetpu.runtime_version(library) if lib["found"] else None,
            "devices": edgetpu.list_devices(library) if lib["found"] else [],
            "usb": edgetpu.usb_accelerators(), "pcie": edgetpu.pcie_accelerators()}


def gpu_report() -> dict:
    litert = importlib.util.find_spec("ai_edge_litert")
    accelerator = bool(litert and litert.origin and os.path.exists(
        os.path.join(os.path.dirname(litert.origin), "libLiteRtWebGpuAccelerator.so")))
    return {"delegate_library": {**_library(library_for("gpu")), "override": GPU_LIBRARY_ENV},
            "litert_gpu_accelerator": "shipped with ai-edge-litert (WebGPU; needs a GPU adapter, e.g. Vulkan)"
            if accelerator else "not available (needs ai-edge-litert)",
            "opencl": _library("libOpenCL.so.1"), "vulkan": _library("libvulkan.so.1")}


def _missing(backends: list[dict], tpu: dict, gpu: dict) -> list[dict]:
    """Each missing piece with its one install command."""
    missing = []
    if not any(b["available"] for b in backends):
        missing.append({"what": "a TFLite backend", "install": INSTALL["backend"]})
    if not tpu["found"]:
        missing.append({"what": f"Edge TPU runtime ({tpu['library']})", "install": INSTALL["libedgetpu"]})
    if any(not d["accessible"] for d in tpu["usb"]):
        missing.append({"what": "permission to open the USB Accelerator", "install": INSTALL["usb_permission"]})
    if any(not d["accessible"] for d in tpu["pcie"]):
        missing.append({"what": "permission to open /dev/apex_*", "install": INSTALL["pcie_permission"]})
    for key in ("opencl", "vulkan"):
        if not gpu[key]["found"]:
            missing.append({"what": f"{key} ({gpu[key]['library']})", "install": INSTALL[key]})
    if not gpu["delegate_library"]["found"]:
        missing.append({"what": "TFLite GPU delegate library", "install": INSTALL["gpu_delegate"]})
    return missing


# One 1x1 Conv2D with a static batch, float32 and full int8 (tests/fixtures/build_models.py).
PROBES = {dtype: os.path.join(os.path.dirname(__file__), f"probe_{dtype}.tflite") for dtype in ("float32", "int8")}


def _runs_as(delegate: str) -> dict[str, str]:
    """What actually runs a probe model of each dtype when ``delegate`` is asked for."""
    from edgelite.runtime.errors import EdgeliteError
    from edgelite.runtime.interpreter.model import Model
    ran = {}
    for dtype, path in PROBES.items():
        try:
            ran[dtype] = Model(path, delegate=delegate).delegate.actual
        except EdgeliteError as exc:
            ran[dtype] = f"fails: {exc}"
    return ran


def cpu_delegates() -> list[dict]:
    """cpu and xnnpack as they behave here, read from the execution plan of probe models, because
    whether XNNPACK takes a model's ops depends on the backend build and on the model (tflite-runtime
    2.14 delegates float ops but leaves int8 ones to the builtin kernels), not on the backend's name."""
    rows = []
    for name in ("cpu", "xnnpack"):
        ran = _runs_as(name)
        works = [dtype for dtype, actual in ran.items() if actual == name]
        detail = ("builtin kernels of the backend" if name == "cpu" else "the default CPU delegate") + "; " + \
            ", ".join(f"{dtype} probe runs on {actual}" for dtype, actual in ran.items()) + \
            ("" if len(works) == len(ran) else "; `edgelite profile` says what runs your model")
        rows.append({"name": name, "available": bool(works), "detail": detail, "runs_as": ran})
    return rows


def provenance() -> dict:
    """What a report was made with, when and where (a sweep's report carries it, so its figures can be told apart
    from the next edgelite's or the next machine's): edgelite, the date, Python, the platform and the libraries
    that convert and run models here."""
    import datetime

    from edgelite.runtime.version import edgelite_version
    return {"edgelite": edgelite_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": sys.version.split()[0], "platform": f"{platform.system()} {platform.machine()}",
            "cores": os.cpu_count(),
            "packages": {n: v for n in ("tensorflow", "ai-edge-litert", "tflite-runtime") if (v := _version(n))}}


def doctor_report() -> dict:
    backends = backend_report()
    tpu, gpu = edgetpu_report(), gpu_report()
    any_backend = any(b["available"] for b in backends)
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "packages": {name: _version(name) for name in ("numpy", "pillow", "click", "ai-edge-litert",
                                                         "tflite-runtime", "tensorflow")},
        "backends": backends,
        "delegates": [
            *(cpu_delegates() if any_backend else [
                {"name": n, "available": False, "detail": "no TFLite backend"} for n in ("cpu", "xnnpack")]),
            {"name": "edgetpu", "available": tpu["found"] and bool(tpu["devices"] or tpu["usb"] or tpu["pcie"]),
             "detail": f"{tpu['library']}: {tpu['detail']}; {len(tpu['usb'])} USB and {len(tpu['pcie'])} PCIe "
                       "accelerator(s) seen"},
            {"name": "gpu", "available": gpu["delegate_library"]["found"],
             "detail": f"{gpu['delegate_library']['library']}: {gpu['delegate_library']['detail']}; LiteRT "
                       f"accelerator: {gpu['litert_gpu_accelerator']}"},
        ],
        "edgetpu": tpu,
        "gpu": gpu,
        "missing": _missing(backends, tpu, gpu),
        "verified_on_hardware": False,
    }
