"""What a translator's matrix products run on: CTranslate2's GEMM backend and the CPU's int8 instructions.

CTranslate2 multiplies an Argos model's int8 weights with Intel MKL on an Intel CPU and with
oneDNN on any other (``CT2_USE_MKL`` overrides that), and the library then runs the widest int8
instructions the CPU has. Batched decoding is bound by those products, so its cost per cue
follows the instructions, not the library: on one Intel host MKL and oneDNN cost about the same
with the same instructions, and capping either at AVX2 (no VNNI: an AMD EPYC before Zen 4, an
Intel Xeon before Cascade Lake) costs twice as much per cue or more. argostranslate's line-at-a-time
decoding costs about the same on all of them, so the gain of batching is set by the CPU
(README, Benchmarks). The translator logs this beside its settings when it loads a model, and
``vodray models list`` prints it, so that a slower node can be told from a misconfigured one.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

INT8_INSTRUCTIONS = (
    ("amx_int8", "AMX"),
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx512bw", "AVX-512 without VNNI"),
    ("avx2", "AVX2 without VNNI"),
)
"""``/proc/cpuinfo`` flags of the int8 dot products MKL and oneDNN use, fastest first."""

ISA_CAPS = {"MKL": "MKL_ENABLE_INSTRUCTIONS", "oneDNN": "ONEDNN_MAX_CPU_ISA"}
"""The variable that caps each library's instructions below what the CPU has."""


@dataclass(frozen=True)
class TranslationCpu:
    vendor: str
    model: str
    backend: str
    """CTranslate2's int8 GEMM backend: ``MKL``, ``oneDNN`` (x86) or ``Ruy`` (ARM)."""
    int8: str
    """The fastest int8 instructions the CPU has (``AVX2 without VNNI``...), or ``unknown``."""
    cap: str = ""
    """``ONEDNN_MAX_CPU_ISA=AVX2`` or ``MKL_ENABLE_INSTRUCTIONS=AVX2`` when set: the library may use less."""

    def __str__(self) -> str:
        capped = f", capped by {self.cap}" if self.cap else ""
        return f"{self.backend} on {self.vendor} {self.model} (int8: {self.int8}{capped})"


def parse_cpuinfo(text: str) -> tuple[str, str, set[str]]:
    """Vendor, model name and flags of the first CPU in ``/proc/cpuinfo`` text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough: they are alike
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    vendor = fields.get("vendor_id") or fields.get("CPU implementer") or platform.processor() or "unknown"
    model = " ".join((fields.get("model name") or platform.machine() or "CPU").split())
    return vendor, model, set(fields.get("flags", fields.get("Features", "")).split())


def int8_instructions(flags: set[str]) -> str:
    return next((name for flag, name in INT8_INSTRUCTIONS if flag in flags), "unknown")


def gemm_backend() -> str:
    """The backend CTranslate2 picked in this process for int8 products (fixed on its import)."""
    import ctranslate2

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "Ruy"  # CTranslate2's ARM builds run int8 on Ruy
    # CTranslate2 runs int16 on MKL and nowhere else: it is offered exactly when MKL is the backend.
    return "MKL" if "int16" in ctranslate2.get_supported_compute_types("cpu") else "oneDNN"


def translation_cpu(
    cpuinfo: Path = Path("/proc/cpuinfo"), env: Mapping[str, str] = os.environ
) -> TranslationCpu:
    """This process's backend and this machine's CPU, as ``TranslationCpu``."""
    try:
        vendor, model, flags = parse_cpuinfo(cpuinfo.read_text(errors="replace"))
    except OSError:  # not Linux: no /proc/cpuinfo
        vendor, model, flags = platform.processor() or "unknown", platform.machine() or "CPU", set()
    backend = gemm_backend()
    variable = ISA_CAPS.get(backend, "")
    cap = f"{variable}={env[variable]}" if variable and env.get(variable) else ""
    return TranslationCpu(vendor, model, backend, int8_instructions(flags), cap)
