"""The op definitions. Importing this package registers every built-in op."""

from gradverify.engine.ops import (  # noqa: F401
    array_ops,
    candidate_sampling_ops,
    conv_ops,
    core_ops,
    embedding_ops,
    index_ops,
    math_ops,
    mirror_pad_ops,
    nn_ops,
    pool_ops,
    random_ops,
    reduction_ops,
    state_ops,
)
