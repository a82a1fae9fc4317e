"""What the translator reports it runs on: the CPU's int8 instructions and CTranslate2's backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.subtitles.models import install_model
from pipelines.subtitles.translate_cpu import (
    TranslationCpu,
    int8_instructions,
    parse_cpuinfo,
    translation_cpu,
)
from tests.argos_model import build_argos_package

# The first lines of /proc/cpuinfo on three kinds of host (flags trimmed to the ones that matter).
EPYC_ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_1 sse4_2 avx f16c fma avx2 bmi2 sha_ni avx512_vnni
"""
EPYC_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16
"""
XEON_SPR = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)  Platinum 8481C CPU @ 2.70GHz
flags\t\t: avx2 avx512f avx512bw avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8
"""
XEON_SKYLAKE = """vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.00GHz
flags\t\t: avx2 avx512f avx512bw
"""


def test_the_cpu_and_its_fastest_int8_instructions_are_read_from_cpuinfo() -> None:
    vendor, model, flags = parse_cpuinfo(EPYC_ZEN3)
    # Only the first processor counts (the second's avx512_vnni is not read).
    assert (vendor, model, int8_instructions(flags)) == ("AuthenticAMD", "AMD EPYC 7B13", "AVX2 without VNNI")
    assert int8_instructions(parse_cpuinfo(EPYC_ZEN4)[2]) == "AVX-512 VNNI"
    assert parse_cpuinfo(XEON_SPR)[1] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert int8_instructions(parse_cpuinfo(XEON_SPR)[2]) == "AMX"
    assert int8_instructions(parse_cpuinfo(XEON_SKYLAKE)[2]) == "AVX-512 without VNNI"
    assert int8_instructions({"sse4_2"}) == "unknown"


def test_the_report_names_the_backend_and_a_cap_on_its_instructions(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(EPYC_ZEN3)
    report = translation_cpu(cpuinfo, env={"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"})
    assert (report.vendor, report.model, report.int8) == (
        "AuthenticAMD",
        "AMD EPYC 7B13",
        "AVX2 without VNNI",
    )
    assert report.backend in ("MKL", "oneDNN")
    variable = "MKL_ENABLE_INSTRUCTIONS" if report.backend == "MKL" else "ONEDNN_MAX_CPU_ISA"
    assert report.cap == f"{variable}=AVX2"
    capped = f"capped by {variable}=AVX2"
    assert (
        str(report) == f"{report.backend} on AuthenticAMD AMD EPYC 7B13 (int8: AVX2 without VNNI, {capped})"
    )
    assert translation_cpu(cpuinfo, env={}).cap == ""
    unreadable = translation_cpu(tmp_path / "missing", env={})  # no /proc/cpuinfo (macOS): still a report
    assert unreadable.int8 == "unknown" and unreadable.backend == report.backend
    assert str(TranslationCpu("GenuineIntel", "Xeon", "MKL", "AMX")) == "MKL on GenuineIntel Xeon (int8: AMX)"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("argos")
    return install_model(build_argos_package(root / "en_es.argosmodel"), root / "models").path / "model"


@pytest.mark.parametrize("use_mkl", ["0", "1"])
def test_the_backend_is_the_one_ctranslate2_says_it_selected(use_mkl: str, model: Path) -> None:
    # CTranslate2 logs its GEMM backends when it loads a model (CT2_VERBOSE); CT2_USE_MKL is read
    # once per process, so each setting runs in a process of its own.
    script = (
        "import sys, ctranslate2; from pipelines.subtitles.translate_cpu import gemm_backend; "
        "ctranslate2.Translator(sys.argv[1], device='cpu'); print(gemm_backend())"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(model)],
        env={**os.environ, "CT2_USE_MKL": use_mkl, "CT2_VERBOSE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    [said] = [line for line in run.stderr.splitlines() if "GEMM_S8 backend:" in line]
    expected = {"MKL": "MKL", "DNNL": "oneDNN"}[said.split("GEMM_S8 backend:")[1].split()[0]]
    assert run.stdout.strip() == expected == {"1": "MKL", "0": "oneDNN"}[use_mkl]
