"""The embedding worker: the code inside every embedding Job pod (`vector-operator worker`).

It reads one key range of a source (an SQL table or files), embeds the text with a
sentence-transformers model in adaptive micro-batches, rejects vectors that cannot be right,
upserts the rest into the physical Milvus collection, measures quality on a sample, and writes a
small JSON result to the pod's termination message for the MigrationPlan controller.
"""
