# syntax=docker/dockerfile:1
# fastgate in a container: docker build -t fastgate . && docker run -p 8080:8080 fastgate
# Your configuration: -v /path/to/fastgate.conf:/etc/fastgate/fastgate.conf:ro

# --- build: the compiled modules, as a wheel -------------------------------------------------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY fastgate ./fastgate
RUN pip install --no-cache-dir "setuptools>=77" wheel "cython>=3.0" \
    && pip wheel --no-cache-dir --no-build-isolation --wheel-dir /wheels .

# --- run: no compiler, no root ----------------------------------------------------------------
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fastgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY contrib/docker.conf /etc/fastgate/fastgate.conf
USER fastgate
EXPOSE 8080
# SIGQUIT is fastgate's graceful stop (in-flight requests finish); docker stop sends it
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["fastgate"]
CMD ["-c", "/etc/fastgate/fastgate.conf"]
