"""Build script: package layout and the optional compiled projection backends.

Metadata lives in ``pyproject.toml``; this file only adds what setuptools cannot express there:
the shipped ``datasets/`` folder mapped to ``graphtag.bundled`` and the C++/CUDA extensions.
"""

from setuptools import find_packages, setup


def _extensions():
    """C++ (OpenMP) and, when torch has CUDA, CUDA builds of the sparse projector.

    Returns ``(ext_modules, cmdclass)``. Without torch at build time the package still installs
    (pure Python); ``graphtag.projection`` then JIT-compiles the C++ backend on first use or
    falls back to its torch reference implementation.
    """
    import os

    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension
    except ImportError as exc:  # build isolation without torch, or a source checkout
        print(
            f"WARNING: torch is not importable ({exc}); building graphtag without the compiled "
            "projection backends. Install torch first and rebuild (e.g. pip install "
            "--no-build-isolation .) to get them."
        )
        return [], {}

    csrc = os.path.join("graphtag", "projection", "csrc")
    # No -march=native: wheels must run on any x86-64; the kernels pick AVX2/AVX-512 at run time.
    cflags = ["-O3", "-fopenmp"]
    ext_modules = [
        CppExtension(
            "graphtag.projection._sjlt_cpu",
            [os.path.join(csrc, "sjlt_cpu.cpp")],
            include_dirs=[os.path.abspath(csrc)],
            extra_compile_args={"cxx": cflags},
            extra_link_args=["-fopenmp"],
        )
    ]
    want_cuda = torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1"
    if want_cuda and CUDA_HOME is not None:
        from torch.utils.cpp_extension import CUDAExtension

        ext_modules.append(
            CUDAExtension(
                "graphtag.projection._sjlt_cuda",
                [os.path.join(csrc, "sjlt_cuda.cpp"), os.path.join(csrc, "sjlt_cuda_kernel.cu")],
                include_dirs=[os.path.abspath(csrc)],
                extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3"]},
            )
        )
    elif want_cuda:
        print("WARNING: CUDA requested but CUDA_HOME was not found; skipping the CUDA backend.")
    return ext_modules, {"build_ext": BuildExtension}


ext_modules, cmdclass = _extensions()

setup(
    packages=[*find_packages(include=["graphtag", "graphtag.*"]), "graphtag.bundled"],
    package_dir={"graphtag.bundled": "datasets"},
    package_data={
        "graphtag.bundled": ["*/*.gz", "*/*.md", "*.md"],
        # Sources ship so the projector can JIT-compile where the wheel has no binary.
        "graphtag.projection": ["csrc/*.cpp", "csrc/*.h", "csrc/*.cu"],
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
