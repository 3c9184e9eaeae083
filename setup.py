"""Builds fastgate's Cython core. There is no pure-Python fallback: if the extension
cannot be compiled, installation fails."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "fastgate._core",
        ["fastgate/_core.pyx"],
        libraries=["crypto"],
        # SHA256_Init & co. are deprecated in OpenSSL 3 but remain its fastest way to
        # reuse precomputed HMAC pad states; see _core.pyx.
        define_macros=[("OPENSSL_SUPPRESS_DEPRECATED", None), ("NDEBUG", None)],
        extra_compile_args=["-O3"],
    ),
    Extension("fastgate._wire", ["fastgate/_wire.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.request", ["fastgate/proxy/request.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.fast", ["fastgate/proxy/fast.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy._headers", ["fastgate/proxy/_headers.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.proxy._walk", ["fastgate/proxy/_walk.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.page", ["fastgate/proxy/page.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.jwt_phase", ["fastgate/proxy/jwt_phase.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.ops.counters", ["fastgate/ops/counters.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.ops.dispatch", ["fastgate/ops/dispatch.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.ops.limit_table", ["fastgate/ops/limit_table.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.http.h11_scan", ["fastgate/http/h11_scan.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.http.events", ["fastgate/http/events.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.counts", ["fastgate/proxy/counts.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.memo", ["fastgate/proxy/memo.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.http.exchange", ["fastgate/http/exchange.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.http.httptools_engine", ["fastgate/http/httptools_engine.pyx"],
              extra_compile_args=["-O3"]),
    Extension("fastgate.http.client", ["fastgate/http/client.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.http.server", ["fastgate/http/server.pyx"], extra_compile_args=["-O3"]),
    Extension("fastgate.proxy.upstream", ["fastgate/proxy/upstream.pyx"],
              extra_compile_args=["-O3"]),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        annotate=False,
    ),
)
