"""VectorCollection: a serving endpoint in Milvus, i.e. an alias applications query and the
versioned physical collection behind it, with its index, metric and embedding model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from vector_operator.api.bounds import SIMILARITY_RANGE
from vector_operator.api.collection_reindex import ReindexSpec, ReindexStatus
from vector_operator.api.collection_tuning import TuningSpec, TuningStatus
from vector_operator.api.conditions import Conditions
from vector_operator.api.kubernetes_types import ObjectMeta, SecretKeyReference
from vector_operator.api.model import (
    ApiModel,
    PreservedObject,
    Rule,
    list_type,
    milvus_name,
    milvus_name_rule,
    validations,
)
from vector_operator.api.resource import AGE, API_VERSION, PrinterColumn, ResourceKind

MIN_DIMENSION = 2
MAX_DIMENSION = 32768
# The operator names physical collections "<collectionName>__v<N>"; Milvus names end at 255.
MAX_COLLECTION_NAME_LENGTH = 240
PRIMARY_KEY_FIELD = "id"
"""The primary key field of every physical collection: the source's key."""
VECTOR_FIELD = "vector"
"""The vector field of every physical collection."""
CONTENT_HASH_FIELD = "content_hash"
"""A hash of the text each vector was embedded from and of the model settings (INT64): a sync
re-embeds a changed row only when it differs."""
RESERVED_FIELD_NAMES = (PRIMARY_KEY_FIELD, VECTOR_FIELD, CONTENT_HASH_FIELD)
DEFAULT_VARCHAR_KEY_LENGTH = 512
"""primaryKey.maxLength when a VARCHAR key does not set it."""


class MetricType(StrEnum):
    """How Milvus measures the distance between two vectors."""

    L2 = "L2"
    IP = "IP"
    COSINE = "COSINE"


class IndexType(StrEnum):
    """The Milvus vector index type."""

    FLAT = "FLAT"
    IVF_FLAT = "IVF_FLAT"
    IVF_SQ8 = "IVF_SQ8"
    IVF_PQ = "IVF_PQ"
    HNSW = "HNSW"
    DISKANN = "DISKANN"
    AUTOINDEX = "AUTOINDEX"


IVF_INDEX_TYPES = (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_PQ)
_IVF_LIST = "['IVF_FLAT', 'IVF_SQ8', 'IVF_PQ']"


class TlsConfig(ApiModel):
    """TLS towards Milvus."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="self.enabled || (!has(self.caSecretRef) && !has(self.serverName) && "
                "!self.insecureSkipVerify)",
                message="caSecretRef, serverName and insecureSkipVerify take effect only with TLS: "
                "set tls.enabled: true, or remove them",
            ),
            Rule(
                rule="!(self.insecureSkipVerify && has(self.caSecretRef))",
                message="insecureSkipVerify: true skips the very certificate check that caSecretRef is "
                "for: set one of them",
            ),
        )
    )

    enabled: bool = False
    """Connect to Milvus over TLS. An https:// uri implies it."""
    ca_secret_ref: SecretKeyReference | None = None
    """A Secret key holding the PEM CA bundle that signed Milvus's certificate; omitted: the system
    trust store."""
    server_name: str | None = Field(default=None, min_length=1, max_length=253)
    """The name to verify Milvus's certificate against, when it differs from the uri's host."""
    insecure_skip_verify: bool = False
    """Accept any certificate Milvus presents. For development only: it gives up the protection
    TLS is for."""


class MilvusConnection(ApiModel):
    """Where the collection lives and how the operator and its Jobs authenticate."""

    uri: str | None = Field(
        default=None,
        max_length=2048,
        json_schema_extra=validations(
            Rule(
                rule="self.matches('^(http|https|tcp)://[^ /?#]+(/[^ ]*)?$')",
                message="milvus.uri must be http://HOST:PORT, https://HOST:PORT or tcp://HOST:PORT, "
                "e.g. http://milvus.milvus.svc:19530",
            )
        ),
    )
    """Milvus endpoint, e.g. http://milvus.milvus.svc:19530. Omitted: the operator's default
    Milvus (its --milvus-uri)."""
    database: str = milvus_name("milvus.database", "default", default="default")
    """Milvus database that holds the collection."""
    secret_ref: SecretKeyReference | None = None
    """A Secret key holding the Milvus credentials: a token, or user:password. Omitted: connect
    without authentication."""
    tls: TlsConfig | None = None
    """TLS settings; omitted: plain connection unless the uri is https://."""


class IndexParams(ApiModel):
    """Build parameters of the vector index. Which ones apply depends on index.type: IVF_FLAT and
    IVF_SQ8 need nlist; IVF_PQ needs nlist and m (nbits optional); HNSW needs M and
    efConstruction; FLAT, DISKANN and AUTOINDEX take none."""

    nlist: int | None = Field(default=None, ge=1, le=65536)
    """IVF types: number of clusters the vectors are partitioned into (1..65536). A common start
    is about 4 x sqrt(number of vectors)."""
    m: int | None = Field(default=None, ge=1, le=MAX_DIMENSION)
    """IVF_PQ: number of sub-vectors each vector is split into for product quantization; must
    divide the dimension."""
    nbits: int | None = Field(default=None, ge=1, le=16)
    """IVF_PQ: bits per sub-vector code (1..16); Milvus defaults to 8."""
    hnsw_m: int | None = Field(default=None, alias="M", ge=2, le=2048)
    """HNSW: maximum number of graph neighbours per node (2..2048); more means better recall,
    more memory. 16 to 64 is typical."""
    ef_construction: int | None = Field(default=None, ge=1, le=2147483647)
    """HNSW: candidate list size while building the graph (at least 1); more means a better graph,
    slower builds. 100 to 500 is typical."""


class IndexSpec(ApiModel):
    """The vector index Milvus builds over the collection."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule=f"!(self.type in {_IVF_LIST}) || (has(self.params) && has(self.params.nlist))",
                message="the IVF index types need params.nlist (1..65536), e.g. params: {nlist: 1024}",
                message_expression="'index type ' + self.type + ' needs params.nlist (1..65536), "
                "e.g. params: {nlist: 1024}'",
                field_path=".params.nlist",
                reason="FieldValueRequired",
            ),
            Rule(
                rule="self.type != 'IVF_PQ' || (has(self.params) && has(self.params.m))",
                message="index type IVF_PQ needs params.m, the number of sub-vectors; it must divide "
                "the dimension, e.g. m: 64 for dimension 512",
                field_path=".params.m",
                reason="FieldValueRequired",
            ),
            Rule(
                rule="self.type != 'HNSW' || (has(self.params) && has(self.params.M) && "
                "has(self.params.efConstruction))",
                message="index type HNSW needs params.M (2..2048) and params.efConstruction (at least "
                "1), e.g. params: {M: 16, efConstruction: 200}",
                field_path=".params",
                reason="FieldValueRequired",
            ),
            Rule(
                rule=f"self.type in {_IVF_LIST} || !has(self.params) || !has(self.params.nlist)",
                message="params.nlist applies only to the index types IVF_FLAT, IVF_SQ8 and IVF_PQ: "
                "remove it or change index.type",
                message_expression="'params.nlist applies only to the index types IVF_FLAT, IVF_SQ8 and "
                "IVF_PQ, not to ' + self.type + ': remove it or change index.type'",
                field_path=".params.nlist",
            ),
            Rule(
                rule="self.type == 'IVF_PQ' || !has(self.params) || "
                "(!has(self.params.m) && !has(self.params.nbits))",
                message="params.m and params.nbits apply only to the index type IVF_PQ: remove them "
                "or change index.type",
                message_expression="'params.m and params.nbits apply only to the index type IVF_PQ, "
                "not to ' + self.type + ': remove them or change index.type'",
                field_path=".params",
            ),
            Rule(
                rule="self.type == 'HNSW' || !has(self.params) || "
                "(!has(self.params.M) && !has(self.params.efConstruction))",
                message="params.M and params.efConstruction apply only to the index type HNSW: remove "
                "them or change index.type",
                message_expression="'params.M and params.efConstruction apply only to the index type "
                "HNSW, not to ' + self.type + ': remove them or change index.type'",
                field_path=".params",
            ),
        )
    )

    type: IndexType = IndexType.AUTOINDEX
    """Index type: FLAT (exact, no build), IVF_FLAT, IVF_SQ8 (IVF with 8-bit scalar quantization),
    IVF_PQ (IVF with product quantization), HNSW (graph), DISKANN (on disk) or AUTOINDEX (Milvus
    chooses)."""
    params: IndexParams | None = None
    """Build parameters for the chosen type: IVF_FLAT and IVF_SQ8 need nlist; IVF_PQ needs nlist and
    m (m must divide the dimension; nbits optional); HNSW needs M and efConstruction; FLAT, DISKANN
    and AUTOINDEX take none. A parameter the type does not use is refused."""


class SearchParams(ApiModel):
    """Parameters the serving search uses (and the operator's quality probes with it)."""

    nprobe: int | None = Field(default=None, ge=1, le=65536)
    """IVF types: number of clusters searched per query, 1..nlist; more means better recall,
    slower search."""
    ef: int | None = Field(default=None, ge=1, le=32768)
    """HNSW: candidate list size while searching (at least the number of results asked for);
    more means better recall, slower search."""


class ScalarFieldType(StrEnum):
    """The Milvus data type of a scalar field."""

    VARCHAR = "VARCHAR"
    INT64 = "INT64"
    INT32 = "INT32"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    BOOL = "BOOL"
    JSON = "JSON"


class ScalarField(ApiModel):
    """A scalar (metadata) field stored next to each vector, filled by a MigrationPlan's
    source.*.fields and usable in search filters."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="self.type != 'VARCHAR' || has(self.maxLength)",
                message="a VARCHAR field needs maxLength (1..65535), the longest value in bytes",
                message_expression="'field ' + self.name + ' is VARCHAR and needs maxLength (1..65535), "
                "the longest value in bytes'",
                field_path=".maxLength",
                reason="FieldValueRequired",
            ),
            Rule(
                rule="self.type == 'VARCHAR' || !has(self.maxLength)",
                message="maxLength applies only to VARCHAR fields: remove it or change the type",
                message_expression="'maxLength applies only to VARCHAR fields, and field ' + self.name + "
                "' is ' + self.type + ': remove it or change the type'",
                field_path=".maxLength",
            ),
            Rule(
                rule=f"!(self.name in {list(RESERVED_FIELD_NAMES)})",
                message="the field names id, vector and content_hash are the operator's own (primary key, "
                "vector, and the hash a sync compares): choose another name",
                field_path=".name",
            ),
        )
    )

    name: str = milvus_name("field name", "source_table")
    """Field name: letters, digits and underscores, starting with a letter or an underscore. id,
    vector and content_hash are reserved for the primary key, the vector and the content hash."""
    type: ScalarFieldType
    """Milvus data type: VARCHAR, INT64, INT32, FLOAT, DOUBLE, BOOL or JSON."""
    max_length: int | None = Field(default=None, ge=1, le=65535)
    """VARCHAR only, and required there: the longest value in bytes (1..65535)."""


class PrimaryKeyType(StrEnum):
    """The Milvus data type of the primary key field `id`."""

    INT64 = "INT64"
    VARCHAR = "VARCHAR"


class PrimaryKeySpec(ApiModel):
    """The primary key field `id`: the source's primary key, so a re-run batch overwrites (upserts)
    instead of duplicating."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="self.type == 'VARCHAR' || !has(self.maxLength)",
                message="primaryKey.maxLength applies only to type VARCHAR: remove it or set type: VARCHAR",
                field_path=".maxLength",
            ),
        )
    )

    type: PrimaryKeyType = PrimaryKeyType.INT64
    """INT64 for integer source keys, VARCHAR for text keys (UUIDs, slugs)."""
    max_length: int | None = Field(default=None, ge=1, le=65535)
    """VARCHAR only: the longest key in bytes (1..65535); omitted: 512 (DEFAULT_VARCHAR_KEY_LENGTH)."""


class EmbeddingDevice(StrEnum):
    """Where the embedding model runs."""

    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


class EmbeddingBackend(StrEnum):
    """What runs the model's transformer on CPU."""

    TORCH = "torch"
    ONNX = "onnx"
    OPENVINO = "openvino"


class EmbeddingSpec(ApiModel):
    """The sentence-transformers model that turns source text into vectors, and how it is run."""

    model: str = Field(min_length=1, max_length=512)
    """sentence-transformers model: a Hugging Face model id such as
    sentence-transformers/all-MiniLM-L6-v2, or a path in the worker image. Its output dimension
    (after truncateDim) must equal spec.dimension."""
    normalize: bool = True
    """Scale every vector to unit length before storing it. Keep it on for COSINE and IP."""
    device: EmbeddingDevice = EmbeddingDevice.CPU
    """Where the workers run the model: cpu, cuda, or auto (cuda when a GPU is visible)."""
    truncate_dim: int | None = Field(default=None, ge=MIN_DIMENSION, le=MAX_DIMENSION)
    """Keep only the first truncateDim components of each vector (for Matryoshka-trained models);
    must equal spec.dimension. Omitted: the model's full output."""
    max_seq_length: int | None = Field(default=None, ge=1, le=32768)
    """Cut input text to this many tokens. Omitted: the model's own limit. Shorter is faster and
    loses quality on long texts (watch coherence)."""
    backend: EmbeddingBackend = EmbeddingBackend.TORCH
    """What runs the model on CPU: torch (PyTorch, float32), onnx (ONNX Runtime, float32) or openvino
    (OpenVINO, in the precision it picks for the CPU: bfloat16 where the CPU computes it natively,
    else float32). onnx and openvino run the model's transformer exported to ONNX (once, then cached
    in the worker's $VO_BACKEND_CACHE) with the model's own tokenizer, sequence limit, pooling,
    truncateDim and normalize; on CPU they are often faster. Every batch's coherence compares the
    stored vectors with the model run by torch in float32, so what a backend costs in quality is
    measured, not assumed. On cuda the model runs on torch. Changing it does not change the vector
    space."""


class DeletionPolicy(StrEnum):
    """What happens to the Milvus data when the VectorCollection is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class VectorCollectionSpec(ApiModel):
    """The desired collection. Changing dimension, metricType or embedding.model changes the
    vector space: the operator reports UpToDate=False (reason MigrationRequired) and a
    MigrationPlan rebuilds the collection."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            Rule(
                rule="!(has(self.index) && self.index.type == 'IVF_PQ' && has(self.index.params) && "
                "has(self.index.params.m)) || self.dimension % self.index.params.m == 0",
                message="index.params.m must divide dimension evenly: IVF_PQ splits each vector into m "
                "sub-vectors of equal length",
                field_path=".index.params.m",
            ),
            Rule(
                rule="!(has(self.searchParams) && has(self.searchParams.nprobe)) || "
                f"(has(self.index) && self.index.type in {_IVF_LIST})",
                message="searchParams.nprobe applies only to the index types IVF_FLAT, IVF_SQ8 and "
                "IVF_PQ: remove it or change index.type",
                field_path=".searchParams.nprobe",
            ),
            Rule(
                rule="!(has(self.searchParams) && has(self.searchParams.nprobe) && has(self.index) && "
                "has(self.index.params) && has(self.index.params.nlist)) || "
                "self.searchParams.nprobe <= self.index.params.nlist",
                message="searchParams.nprobe must not exceed index.params.nlist: it counts how many of "
                "the nlist clusters a search visits",
                field_path=".searchParams.nprobe",
            ),
            Rule(
                rule="!(has(self.searchParams) && has(self.searchParams.ef)) || "
                "(has(self.index) && self.index.type == 'HNSW')",
                message="searchParams.ef applies only to the index type HNSW: remove it or change index.type",
                field_path=".searchParams.ef",
            ),
            Rule(
                rule="!has(self.embedding.truncateDim) || self.embedding.truncateDim == self.dimension",
                message="embedding.truncateDim must equal dimension: the collection stores the "
                "truncated vectors",
                field_path=".embedding.truncateDim",
            ),
        )
    )

    collection_name: str = Field(
        min_length=1,
        max_length=MAX_COLLECTION_NAME_LENGTH,
        json_schema_extra=validations(
            milvus_name_rule("collectionName", "ai_native_nodes"),
            Rule(
                rule="self == oldSelf",
                message="collectionName cannot be changed: applications query it. Create a new "
                "VectorCollection for a new name",
            ),
        ),
    )
    """The name applications query: a Milvus alias that points at the current physical collection
    (named <collectionName>__v<N>). Letters, digits and underscores, starting with a letter or an
    underscore, at most 240 characters. Cannot be changed."""
    primary_key: PrimaryKeySpec = Field(
        default_factory=PrimaryKeySpec,
        json_schema_extra=validations(
            Rule(
                rule="self == oldSelf",
                message="primaryKey cannot be changed in place: create a new VectorCollection, or let a "
                "MigrationPlan rebuild the data into one",
            )
        ),
    )
    """Type of the primary key field id, which holds the source's primary key. Cannot be changed."""
    milvus: MilvusConnection = Field(default_factory=MilvusConnection)
    """The Milvus that holds the collection: uri (omitted: the operator's default), database,
    credentials and TLS."""
    dimension: int = Field(ge=MIN_DIMENSION, le=MAX_DIMENSION)
    """Number of components of each vector (2..32768): the embedding model's output size (after
    embedding.truncateDim)."""
    metric_type: MetricType = MetricType.COSINE
    """Distance metric: L2 (Euclidean), IP (inner product) or COSINE. With normalized vectors IP
    and COSINE rank alike."""
    index: IndexSpec = Field(default_factory=IndexSpec)
    """The vector index Milvus builds: type (the algorithm) and params (what that type needs), e.g.
    {type: IVF_SQ8, params: {nlist: 1024}} or {type: HNSW, params: {M: 16, efConstruction: 200}}.
    Omitted: AUTOINDEX, Milvus's own choice."""
    search_params: SearchParams | None = None
    """Search parameters for the index: nprobe for IVF types, ef for HNSW."""
    fields: list[ScalarField] | None = Field(
        default=None, max_length=64, json_schema_extra=list_type("map", "name")
    )
    """Scalar fields stored next to each vector (at most 64, names unique)."""
    embedding: EmbeddingSpec
    """The sentence-transformers model the collection's vectors come from, and how the embedding
    Jobs run it. Its output size must equal dimension."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """On deletion of this object: Retain keeps the Milvus collections and alias, Delete drops
    them."""
    reindex: ReindexSpec = Field(default_factory=ReindexSpec)
    """How an index change on a filled collection is made: on a new physical collection, the stored
    vectors copied, validated, then the alias swings; the old one is kept for reindex.retention."""
    tuning: TuningSpec | None = None
    """Tune index and search parameters by a Bayesian study on a sample of the stored vectors;
    omitted: no tuning."""


class VectorCollectionPhase(StrEnum):
    """A one-word summary of the collection for humans; conditions carry the detail."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    MIGRATING = "Migrating"
    REINDEXING = "Reindexing"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class VectorCollectionConditionType(StrEnum):
    """The condition types a VectorCollection reports."""

    READY = "Ready"
    PROVISIONED = "Provisioned"
    INDEXED = "Indexed"
    DEGRADED = "Degraded"
    UP_TO_DATE = "UpToDate"
    TUNED = "Tuned"


class IndexState(StrEnum):
    """Where the index build stands."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    FINISHED = "Finished"
    FAILED = "Failed"


class IndexStatus(ApiModel):
    """The index of the physical collection behind the alias, as Milvus reports it."""

    state: IndexState
    """Pending, InProgress, Finished or Failed."""
    indexed_rows: int | None = Field(default=None, ge=0)
    """Rows the index covers."""
    pending_rows: int | None = Field(default=None, ge=0)
    """Rows still waiting to be indexed."""
    message: str | None = Field(default=None, max_length=4096)
    """Milvus's reason when the build failed."""


class CollectionQuality(ApiModel):
    """The latest collection-level quality probe on the serving alias."""

    coherence: float | None = Field(default=None, ge=SIMILARITY_RANGE[0], le=SIMILARITY_RANGE[1])
    """Mean cosine between stored vectors and a fresh reference encoding of their source text
    (-1..1; a healthy pipeline reads 0.99 or more)."""
    recall_at_k: float | None = Field(default=None, ge=0, le=1)
    """Share of exact nearest neighbours that the index search returns, for sampled queries
    (0..1)."""
    k: int | None = Field(default=None, ge=1)
    """The k of recallAtK."""
    search_latency_p50_ms: float | None = Field(default=None, ge=0)
    """Median latency of canary searches on the alias, in milliseconds."""
    search_latency_p95_ms: float | None = Field(default=None, ge=0)
    """95th percentile latency of canary searches on the alias, in milliseconds."""
    last_probe_time: datetime | None = None
    """When the probe ran."""


class VectorCollectionStatus(ApiModel):
    """The observed state of the collection, written by the operator."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status reflects."""
    phase: VectorCollectionPhase | None = None
    """One-word summary for humans: Pending, Provisioning, Ready, Migrating, Reindexing, Degraded,
    Failed or Terminating."""
    conditions: Conditions | None = None
    """Ready, Provisioned, Indexed, Degraded, UpToDate and (with spec.tuning) Tuned."""
    physical_collection: str | None = Field(default=None, max_length=255)
    """The physical Milvus collection the alias points at."""
    previous_physical_collection: str | None = Field(default=None, max_length=255)
    """The physical collection the alias pointed at before the last cutover, kept for rollback."""
    entity_count: int | None = Field(default=None, ge=0)
    """Exact number of entities in the physical collection (a count(*) query, deletions
    excluded)."""
    index: IndexStatus | None = None
    """Index build state."""
    quality: CollectionQuality | None = None
    """Latest quality probe."""
    reindex: ReindexStatus | None = None
    """The latest re-index (an index change on a filled collection)."""
    tuning: TuningStatus | None = None
    """The latest tuning study."""
    kopf: PreservedObject | None = None
    """Kopf's bookkeeping; not for users."""


class VectorCollection(ApiModel):
    """A VectorCollection as stored by the API server."""

    api_version: Literal["vectors.aios.dev/v1alpha1"] = API_VERSION
    """vectors.aios.dev/v1alpha1"""
    kind: Literal["VectorCollection"] = "VectorCollection"
    """VectorCollection"""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: VectorCollectionSpec
    """The desired collection."""
    status: VectorCollectionStatus | None = None
    """The observed state."""


KIND = ResourceKind(
    kind="VectorCollection",
    plural="vectorcollections",
    short_names=("vcol",),
    description="A serving endpoint in Milvus: an alias (spec.collectionName) that applications query, "
    "backed by a versioned physical collection with the declared dimension, metric, index and "
    "embedding model. Filled by MigrationPlans.",
    spec=VectorCollectionSpec,
    status=VectorCollectionStatus,
    printer_columns=(
        PrinterColumn(
            "Ready",
            '.status.conditions[?(@.type=="Ready")].status',
            "string",
            "Whether the collection serves searches.",
        ),
        PrinterColumn("Dimension", ".spec.dimension", "integer", "Vector dimension."),
        PrinterColumn("Index", ".spec.index.type", "string", "Vector index type."),
        PrinterColumn("Metric", ".spec.metricType", "string", "Distance metric."),
        PrinterColumn("Entities", ".status.entityCount", "integer", "Exact entity count."),
        PrinterColumn(
            "Physical",
            ".status.physicalCollection",
            "string",
            "Physical collection behind the alias.",
            priority=1,
        ),
        PrinterColumn("Model", ".spec.embedding.model", "string", "Embedding model.", priority=1),
        AGE,
    ),
)
