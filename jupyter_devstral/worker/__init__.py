"""The local model, shared by every kernel of a user and kept out of their processes.

A 24B GGUF takes about 14 GB: loading it in each kernel is not an option, and a model crash or
out-of-memory must never take a kernel (and the user's state) down with it. The ``llama_cpp``
backend therefore runs in one worker process per user and (model, n_ctx) (:mod:`.server`),
started on first use and found through a token-protected runtime file (:mod:`.protocol`);
kernels and the Jupyter server talk to it through :class:`.client.WorkerBackend`, a
:class:`~jupyter_devstral.backends.base.Backend` like any other.
"""
