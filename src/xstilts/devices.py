"""The devices jobs run on: peak bf16 dense matrix FLOP/s and memory, for MFU and for `xstilts plan`.

Figures are the vendors' dense (no sparsity) bf16 tensor-core peaks. The CPU's is nominal (0.1 TFLOP/s of fp32
per thread, the order of one AVX2/AVX-512 core's FMA rate): it makes CPU runs' MFUs comparable with each other,
not with GPUs'. No torch here: the plan runs on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass

TERA = 1e12
CPU = "cpu"
CPU_THREAD_PEAK = 0.1 * TERA  # nominal fp32 FLOP/s per thread


@dataclass(frozen=True)
class Device:
    """A device kind: its peak FLOP/s (per thread on the CPU), its memory, and how torch names it."""

    name: str
    peak_flops: float
    memory_gb: float
    names: tuple[str, ...]  # lower-case words that torch.cuda.get_device_name holds, all of them

    def peak(self, threads: int = 1) -> float:
        """The peak FLOP/s of one device (the CPU: of `threads` threads)."""
        return self.peak_flops * (threads if self.name == CPU else 1)


DEVICES: dict[str, Device] = {d.name: d for d in (
    # more specific patterns first: `device_for` takes the first whose words all occur
    Device("H100-PCIe", 756 * TERA, 80, ("h100", "pcie")),
    Device("H100", 989 * TERA, 80, ("h100",)),
    Device("H200", 989 * TERA, 141, ("h200",)),
    Device("B200", 2250 * TERA, 180, ("b200",)),
    Device("A100-80GB", 312 * TERA, 80, ("a100", "80gb")),
    Device("A100", 312 * TERA, 40, ("a100",)),
    Device("L40S", 362 * TERA, 48, ("l40s",)),
    Device(CPU, CPU_THREAD_PEAK, 0, (CPU,)),
)}


def device_for(name: str) -> Device | None:
    """The device kind of a device name as torch gives it ("NVIDIA H100 80GB HBM3", "cpu"); None if unknown."""
    lowered = name.lower()
    return next((d for d in DEVICES.values() if all(word in lowered for word in d.names)), None)


def peak_flops(name: str, threads: int = 1) -> float | None:
    """The peak FLOP/s of one device of this name (the CPU: of `threads` threads); None if unknown."""
    device = device_for(name)
    if device is None:
        return None
    return device.peak(threads)


def mfu(flops: float, seconds: float, peak: float | None) -> float:
    """Model FLOPs utilisation: the model's FLOPs per second over the device's peak (NaN when unknown)."""
    if not peak or seconds <= 0:
        return float("nan")
    return flops / seconds / peak
