# fastgate: everything a fresh machine needs is set up from here.
#   make demo    venv + extension + the demo gateway
#   make test    venv + extension + the whole test suite
#   make bench   micro benchmarks (ratios against PyJWT and the raw primitives)

PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# test workers: twice the cores, since most end-to-end tests wait on the processes they
# start (on 2 cores, 4 workers took the suite from 767 s to 483 s)
TEST_JOBS ?= $(shell echo $$(( $$(nproc) * 2 )))
CORE_SO := fastgate/_core$(shell $(PY) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

.PHONY: test-deps all venv build test lint bench bench-micro bench-load load-deps soak fuzz demo clean sysdeps

all: build

# OpenSSL headers for the core's HMAC (libssl-dev on Debian).
sysdeps:
	@test -f /usr/include/openssl/sha.h || { \
	  echo "installing libssl-dev (OpenSSL headers for the Cython core)"; \
	  apt-get install -y -q libssl-dev >/dev/null || { \
	    echo "error: OpenSSL headers missing; run: apt-get install libssl-dev" >&2; exit 1; }; }

$(STAMP): pyproject.toml setup.py | sysdeps
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "setuptools>=77" "cython>=3.0"
	@# the editable install's "folders with the package's name" notice is the point here
	PYTHONWARNINGS=ignore::UserWarning $(VPY) -m pip install -q --no-build-isolation -e ".[test]"
	touch $@

venv: $(STAMP)

# every compiled module (setup.py builds them all together)
EXT_SRC := fastgate/_core.pyx fastgate/_core.pxd fastgate/_wire.pyx fastgate/_wire.pxd \
           fastgate/proxy/request.pyx fastgate/proxy/request.pxd fastgate/proxy/fast.pyx \
           fastgate/proxy/_headers.pyx fastgate/proxy/_headers.pxd fastgate/proxy/_walk.pyx \
           fastgate/proxy/page.pyx fastgate/proxy/page.pxd fastgate/proxy/jwt_phase.pyx \
           fastgate/ops/dispatch.pyx \
           fastgate/http/httptools_engine.pyx fastgate/http/exchange.pyx \
           fastgate/http/exchange.pxd fastgate/ops/counters.pyx \
           fastgate/ops/limit_table.pyx fastgate/http/client.pyx fastgate/http/client.pxd \
           fastgate/proxy/upstream.pyx fastgate/proxy/upstream.pxd \
           fastgate/http/server.pyx fastgate/http/server.pxd \
           fastgate/http/events.pyx fastgate/http/events.pxd \
           fastgate/proxy/counts.pyx fastgate/proxy/counts.pxd fastgate/proxy/memo.pyx \
           fastgate/http/httptools_engine.pxd fastgate/proxy/_walk.pxd \
           fastgate/ops/counters.pxd fastgate/proxy/memo.pxd fastgate/http/clock.pxd \
           fastgate/http/h11_scan.pyx

$(CORE_SO): $(EXT_SRC) setup.py $(STAMP)
	@echo "building fastgate's compiled modules (Cython and C, about a minute the first time)"
	$(VPY) setup.py -q build_ext --inplace

# the package's bytecode written once here: the environment may set
# PYTHONDONTWRITEBYTECODE, and then every start would compile every module again
# (0.45 s to a listening socket instead of 0.28)
build: $(CORE_SO)
	@$(VPY) -m compileall -q fastgate >/dev/null

# ruff (pyproject's rules) and mypy --strict over the package, its C modules' .pyi included
lint: $(STAMP)
	$(VPY) -m ruff check -q fastgate tests bench fuzz
	$(VPY) -m mypy

# nginx (Debian's 1.22): the parity tests run the same configuration under both
test-deps:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  echo "installing nginx (Debian package) for the side-by-side tests"; \
	  apt-get install -y -q nginx-light >/dev/null; }
	@test -x /usr/sbin/fcgiwrap || { \
	  echo "installing fcgiwrap (Debian package): the FastCGI application of the tests"; \
	  apt-get install -y -q fcgiwrap >/dev/null; }
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package): the cluster store of the fleet tests"; \
	  apt-get install -y -q redis-server >/dev/null; }
	@test -f /usr/share/GeoIP/GeoIP.dat -a -f /usr/lib/nginx/modules/ngx_http_geoip_module.so || { \
	  echo "installing geoip-database, libgeoip1, libnginx-mod-http-geoip (Debian packages):" \
	    "the GeoIP module's databases and library, and nginx's module to compare with"; \
	  apt-get install -y -q geoip-database libgeoip1 libnginx-mod-http-geoip >/dev/null; }
	@test -f /usr/lib/nginx/modules/ngx_http_xslt_filter_module.so || { \
	  echo "installing libnginx-mod-http-xslt-filter (Debian package): nginx's XSLT filter," \
	    "to compare fastgate's with"; \
	  apt-get install -y -q libnginx-mod-http-xslt-filter >/dev/null; }
	@test -f /usr/lib/nginx/modules/ngx_http_image_filter_module.so || { \
	  echo "installing libnginx-mod-http-image-filter (Debian package, with libgd3):" \
	    "nginx's image filter to compare fastgate's with, on the same libgd"; \
	  apt-get install -y -q libnginx-mod-http-image-filter >/dev/null; }
	@test -f /usr/lib/nginx/modules/ngx_stream_geoip_module.so || { \
	  echo "installing libnginx-mod-stream and libnginx-mod-stream-geoip (Debian packages):" \
	    "nginx's stream modules, to compare fastgate's stream block with"; \
	  apt-get install -y -q libnginx-mod-stream libnginx-mod-stream-geoip >/dev/null; }
	@test -f /usr/lib/nginx/modules/ngx_mail_module.so || { \
	  echo "installing libnginx-mod-mail (Debian package): nginx's mail modules, to" \
	    "compare fastgate's mail block with"; \
	  apt-get install -y -q libnginx-mod-mail >/dev/null; }

# one pytest worker per core: each test binds its own free ports and files
test: build lint test-deps
	$(VPY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) tests

bench-micro: build
	@mkdir -p bench/.out
	$(VPY) -m pytest -q -p no:cacheprovider bench/test_micro.py \
	  --benchmark-json=bench/.out/micro.json --benchmark-disable-gc --benchmark-min-time=0.05
	$(VPY) bench/report.py bench/.out/micro.json

# wrk and nginx (Debian packages) and aiohttp (the peer) for the load benchmark
load-deps: build
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { \
	  echo "installing wrk and nginx (Debian packages) for the load benchmark"; \
	  apt-get install -y -q wrk nginx >/dev/null; }
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { \
	  echo "installing haproxy (Debian package): the benchmark's JWT-checking C peer"; \
	  apt-get install -y -q haproxy >/dev/null; }
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package): the synced limit zone's rows"; \
	  apt-get install -y -q redis-server >/dev/null; }
	@$(VPY) -c "import aiohttp" 2>/dev/null || $(VPY) -m pip install -q aiohttp

bench-load: load-deps
	$(VPY) bench/load.py --json bench/.out/load.json

bench: bench-micro bench-load

# 1,000,000 mixed requests through one worker: RSS trend, fd count, no 5xx
soak: load-deps
	$(VPY) bench/soak.py

# the property/fuzz tests, much longer than in `make test`; then atheris (libFuzzer) on
# the JWT core, the config parser and both HTTP engines, a minute each, when it installs
fuzz: build
	FASTGATE_FUZZ_EXAMPLES=20000 $(VPY) -m pytest -q -p no:cacheprovider -m fuzz tests
	@$(VPY) -c "import atheris" 2>/dev/null || $(VPY) -m pip install -q atheris || \
	  { echo "atheris does not install here: hypothesis runs only"; exit 0; }
	for t in jwt config http; do $(VPY) fuzz/atheris_fuzz.py $$t -max_total_time=60 || exit 1; done

demo: build
	$(VENV)/bin/fastgate

clean:
	rm -rf build fastgate/_core.c fastgate/*.so bench/.out .pytest_cache
